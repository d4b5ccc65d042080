"""Triage speed: classifications per second and per-call latency, in process.

    .venv/bin/python bench/triage.py [--file tests/data/triage_calls.jsonl] [--rounds 20]

Classifies every call of the labelled file `--rounds` times with the packaged rules and
prints the mean and percentiles of one classification.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from corespond.triage.classifier import classify
from corespond.triage.evaluation import read_labelled
from corespond.triage.ruleset import load_rules


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--file", type=Path, default=Path("tests/data/triage_calls.jsonl"))
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    rules = load_rules()
    calls = [c.inputs for c in read_labelled(args.file)]
    timings = []
    for _ in range(args.rounds):
        for call in calls:
            started = time.perf_counter()
            classify(call, rules)
            timings.append(time.perf_counter() - started)
    timings.sort()

    def us(p: float) -> float:
        return timings[min(len(timings) - 1, int(p / 100 * len(timings)))] * 1e6

    print(f"triage: {len(timings)} classifications of {len(calls)} calls, rules {rules.version}")
    print(
        f"  mean {statistics.fmean(timings) * 1e6:.0f} us  p50 {us(50):.0f} us  "
        f"p99 {us(99):.0f} us  max {timings[-1] * 1e6:.0f} us  "
        f"({len(timings) / sum(timings):.0f} calls/s on one core)"
    )


if __name__ == "__main__":
    main()
