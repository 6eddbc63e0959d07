"""Streaming recognition on this machine: RTF, per-hop latency, memory on a long file, WER.

    .venv/bin/python benchmarks/recognize.py [--minutes 60] [--connected DATA_DIR]

Targets (issue 5): with the sim backend RTF <= 0.05, per-hop p99 <= 10 ms, constant memory
on a 1-hour file. --connected takes a folder made by `edge-asr data connected` and prints
the word error rate through onnxruntime and through the simulator.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--connected", help="data directory from `edge-asr data connected`")
    a = ap.parse_args()
    from edge_asr.frontend.audio import read_audio, stream_audio
    from edge_asr.hw.convert import ConvertOptions, convert
    from edge_asr.runtime.recognizer import Recognizer
    model = ROOT / "models" / "kws-digits"
    with tempfile.TemporaryDirectory() as tmp:
        design = convert(model, Path(tmp) / "design", ConvertOptions(calib=str(model / "calib.npy")),
                         log=lambda m: None)
        # a long file: the example clips with pauses and noise, repeated, written block by block
        pieces = []
        for w in sorted((model / "examples").glob("*.wav")):
            pieces += [read_audio(w), np.zeros(8000, np.float32)]
        block = np.concatenate(pieces)
        long_wav = Path(tmp) / "long.wav"
        n_blocks = int(np.ceil(a.minutes * 60 * 16000 / block.size))
        rng = np.random.default_rng(0)
        with sf.SoundFile(long_wav, "w", 16000, 1, subtype="PCM_16") as f:
            for _ in range(n_blocks):
                f.write(block + (rng.standard_normal(block.size) * 0.003).astype(np.float32))
        rec = Recognizer.from_design(design, "sim")
        stream = rec.create_stream()
        t0 = time.perf_counter()
        rss = []
        for i, chunk in enumerate(stream_audio(long_wav, 16000, block_seconds=0.1)):
            stream.accept_waveform(16000, chunk)
            while rec.is_ready(stream):
                rec.decode_stream(stream)
            if i % 6000 == 0:  # every 10 minutes of audio
                rss.append(rss_mb())
        stream.input_finished()
        while rec.is_ready(stream):
            rec.decode_stream(stream)
        wall = time.perf_counter() - t0
        res = rec.get_result(stream)
        print(f"{res['audio_seconds'] / 60:.1f} min of audio through the simulator backend in {wall:.1f} s")
        print(f"  RTF (compute / audio)   {res['rtf']:.4f}   (target <= 0.05)")
        print(f"  RTF (wall clock)        {wall / res['audio_seconds']:.4f}")
        print(f"  per-hop latency p50/p99 {res['latency_ms_p50']:.2f} / {res['latency_ms_p99']:.2f} ms   "
              f"(target p99 <= 10 ms)")
        print(f"  decisions {res['decisions']}, words {len(res['events'])}")
        print(f"  RSS every 10 min of audio (MB): {', '.join(f'{r:.0f}' for r in rss)}")
        if a.connected:
            from edge_asr.data.connected import word_error_rate
            from edge_asr.data.manifest import read_manifest
            rows = read_manifest(a.connected)
            refs = [r.text for r in rows]
            for name, r in (("onnxruntime", Recognizer.from_model(model)), ("simulator", rec)):
                hyps = [r.recognize_file(Path(a.connected) / row.path)["text"] for row in rows]
                print(f"  connected digits WER ({name}, {len(rows)} files): {word_error_rate(refs, hyps):.3f}")


if __name__ == "__main__":
    main()
