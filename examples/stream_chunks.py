"""Stream audio in small chunks, as a microphone delivers it, and print each word when heard.

    python examples/stream_chunks.py [AUDIO.wav]
    arecord -f S16_LE -r 16000 -t raw | python examples/stream_chunks.py -     # a real microphone

The recognizer's API has sherpa-onnx's shape: create_stream, accept_waveform, is_ready,
decode_stream, get_result, reset_stream. The default input is four of the shipped
model's example clips one after another, at 8 kHz (the stream resamples).
"""

import sys

import numpy as np
import soundfile as sf

import edge_asr
from edge_asr.frontend.audio import pcm_stdin_chunks


def chunks():
    if len(sys.argv) > 1 and sys.argv[1] == "-":
        yield from ((16000, c) for c in pcm_stdin_chunks(sys.stdin.buffer))
        return
    if len(sys.argv) > 1:
        samples, rate = sf.read(sys.argv[1], dtype="float32", always_2d=True)
        samples = samples.mean(axis=1)
    else:
        examples = edge_asr.shipped_model() / "examples"
        words = [sf.read(next(examples.glob(f"{w}-*.wav")), dtype="float32")[0] for w in ("four", "two", "nine", "six")]
        gap = np.zeros(4000, np.float32)
        samples, rate = np.concatenate([x for w in words for x in (w, gap)])[::2], 8000
    for start in range(0, len(samples), rate // 10):             # 100 ms at a time
        yield rate, samples[start:start + rate // 10]


rec = edge_asr.Recognizer.from_model(edge_asr.shipped_model())  # the float model; from_design for fixed point
stream = rec.create_stream()
heard = []
for rate, chunk in chunks():
    stream.accept_waveform(rate, chunk)
    while rec.is_ready(stream):
        rec.decode_stream(stream)
    for event in rec.get_result(stream)["events"]:
        print(f"heard {event['word']} at {event['end']:.1f} s", flush=True)
        heard.append(event["word"])
    rec.reset_stream(stream)                                       # report each word once
stream.input_finished()
while rec.is_ready(stream):
    rec.decode_stream(stream)
heard += [e["word"] for e in rec.get_result(stream)["events"]]
print("all:", " ".join(heard))
