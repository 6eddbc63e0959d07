"""False alarms per hour and miss rate of a model at its threshold, on running speech without
digits and on real human speech (issue 26's measure).

    .venv/bin/python benchmarks/false_alarms.py [--model models/kws-digits | --design DIR]
        [--running DIR] [--human DIR] [--hours 1] [--target-fa-per-hour 2] [--json]

Without --running / --human it makes them in a temporary folder first (`edge-asr data
running --hours H` with the test voices and the human non-digit prompts; `edge-asr data
human`). The recognizer's threshold is the model's operating threshold (model.json), or
0.55 without one. Prints the point at that threshold, the operating point for the target,
and the DET curve's points in between.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_asr.data.human import make_human_set  # noqa: E402
from edge_asr.data.running import make_running_set  # noqa: E402
from edge_asr.runtime.recognizer import Recognizer  # noqa: E402
from edge_asr.training.streamed import format_streamed, streamed_figures  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=str(ROOT / "models" / "kws-digits"))
    src.add_argument("--design", help="a converted design, run in the bit-exact simulator")
    p.add_argument("--running", help="running speech (edge-asr data running); default: made afresh")
    p.add_argument("--human", help="the human set (edge-asr data human); default: made afresh")
    p.add_argument("--hours", type=float, default=1.0, help="hours of running speech to make (default 1)")
    p.add_argument("--target-fa-per-hour", type=float, default=2.0)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    rec = Recognizer.from_design(a.design) if a.design else Recognizer.from_model(a.model)
    with tempfile.TemporaryDirectory() as tmp:
        running = a.running or make_running_set(Path(tmp) / "running", hours=a.hours, split="test", progress=True,
                                                log=lambda m: print(m, file=sys.stderr))
        human = a.human or make_human_set(Path(tmp) / "human", log=lambda m: print(m, file=sys.stderr))
        res = streamed_figures(rec, human, "test", running, a.target_fa_per_hour, progress=True)
    if a.json:
        print(json.dumps(res))
        return
    print(f"{a.design or a.model}:")
    print(format_streamed(res))
    print("\nDET (threshold: false alarms per hour, miss rate, other words firing):")
    for c in res["det"][::5]:
        print(f"  {c['threshold']:.2f}: {c['fa_per_hour']:8.2f}  {c['miss_rate']:6.1%}  {c['fire_rate']:6.1%}")


if __name__ == "__main__":
    main()
