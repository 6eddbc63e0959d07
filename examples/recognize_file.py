"""Recognize the digits in an audio file with a converted design, in the bit-exact simulator.

    python examples/recognize_file.py [AUDIO.wav] [DESIGN_DIR]

Works with the base install (`pip install edge-asr`). Defaults: one of the shipped
model's example clips, and the shipped design committed in sim/vectors/kws-digits.
"""

import sys
from pathlib import Path

import edge_asr

audio = sys.argv[1] if len(sys.argv) > 1 else next((edge_asr.shipped_model() / "examples").glob("seven-*.wav"))
design = sys.argv[2] if len(sys.argv) > 2 else Path(__file__).resolve().parents[1] / "sim" / "vectors" / "kws-digits"

rec = edge_asr.Recognizer.from_design(design)          # the sim backend: what the board computes, bit for bit
result = rec.recognize_file(audio)
for event in result["events"]:
    print(f"{event['word']:>6}  {event['start']:.2f}-{event['end']:.2f} s  score {event['score']:.2f}")
print(f"heard: {result['text'] or '(no keywords)'}   ({result['decisions']} decisions, RTF {result['rtf']})")
