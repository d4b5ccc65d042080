"""Train triage's learned second opinion from the labelled corpus; one command, same bytes.

    python tools/train_triage_model.py            # write src/corespond/triage/model/
    python tools/train_triage_model.py --report   # cross-validated figures only, no write

Reads every labelled file in ``tests/data`` (the corpus parts, the development and blind
sets: see ``tests/data/README.md``; never a set kept aside for a final blind score) and
fits a logistic regression of "labelled eligible" over hashed word 1-2-grams and
character 3-5-grams of the call's four fields. The data are read in sorted order and the
solver is deterministic, so the same files give the same weights.

The threshold is chosen by 5-fold cross-validation over the calls the *rules* decide
``eligible``: the highest probability threshold that still keeps ``--keep`` (default 98.5 %)
of those calls that are truly eligible; the calls below it are lowered to review. The
report prints how many of the rules' wrongly eligible calls (and their danger calls) each
threshold would catch.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
from scipy.sparse import hstack
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from corespond.triage.classifier import classify
from corespond.triage.evaluation import LabelledCall, read_labelled
from corespond.triage.ruleset import load_rules
from corespond.triage.second_opinion import WEIGHT_DTYPE, build_vectorizers, model_text

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
OUT = ROOT / "src" / "corespond" / "triage" / "model"
VERSION = "2026.11.29"
VECTORIZERS = [
    {"analyzer": "word", "ngram_range": [1, 2], "n_features": 2**18},
    {"analyzer": "char_wb", "ngram_range": [3, 5], "n_features": 2**18},
]
C = 4.0
LABELLED = ["triage_calls.jsonl", "triage_calls_fresh.jsonl", "triage_blind_d.jsonl",
            "triage_blind_f.jsonl", "triage_blind_g.jsonl", "triage_blind_h.jsonl",
            "triage_blind_i.jsonl", "triage_blind_j.jsonl", "triage_blind_k.jsonl",
            "triage_blind_l.jsonl", "triage_blind_m.jsonl", "triage_blind_n.jsonl",
            "triage_blind_e.jsonl"]  # fmt: skip


def corpus() -> list[LabelledCall]:
    files = [DATA / name for name in LABELLED] + sorted((DATA / "corpus").glob("part-*.jsonl"))
    calls: list[LabelledCall] = []
    for path in files:
        calls.extend(read_labelled(path))
    return calls


def features(calls: list[LabelledCall]) -> object:
    vectorizers = build_vectorizers(VECTORIZERS)
    texts = [
        model_text(c.inputs.call_type, c.inputs.call_type_description, c.inputs.narrative,
                   c.inputs.hazards)
        for c in calls
    ]  # fmt: skip
    return hstack([v.transform(texts) for v in vectorizers]).tocsr()


def fit(x: object, y: np.ndarray) -> LogisticRegression:
    model = LogisticRegression(C=C, max_iter=5000, class_weight="balanced")
    model.fit(x, y)
    return model


def choose_threshold(calls: list[LabelledCall], x: object, y: np.ndarray, keep: float) -> float:
    out_of_fold = np.zeros(len(calls))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        out_of_fold[test] = fit(x[train], y[train]).predict_proba(x[test])[:, 1]  # type: ignore[index]
    rules = dataclasses.replace(load_rules(), second_opinion=None)  # the rules alone
    chosen = [i for i, c in enumerate(calls) if classify(c.inputs, rules).decision == "eligible"]
    right = [i for i in chosen if y[i]]
    wrong = [i for i in chosen if not y[i]]
    danger = [i for i in wrong if calls[i].danger]
    print(f"{len(calls)} calls; the rules decide {len(chosen)} eligible: {len(right)} rightly, "
          f"{len(wrong)} wrongly ({len(danger)} with danger)")  # fmt: skip
    best = 0.0
    for step in range(5, 96, 5):
        t = step / 100
        kept = sum(out_of_fold[i] >= t for i in right) / max(1, len(right))
        caught = sum(out_of_fold[i] < t for i in wrong)
        caught_danger = sum(out_of_fold[i] < t for i in danger)
        print(f"  threshold {t:.2f}: keeps {kept:.3f} of the right ones, lowers {caught} of "
              f"{len(wrong)} wrong ones ({caught_danger} of {len(danger)} danger)")  # fmt: skip
        if kept >= keep:
            best = t
    print(f"chosen threshold {best:.2f} (keeps at least {keep:.0%} of the rightly eligible)")
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", action="store_true", help="print figures, write nothing")
    parser.add_argument("--keep", type=float, default=0.985)
    parser.add_argument("--out", type=Path, default=OUT, help="folder to write (default: packaged)")
    args = parser.parse_args(argv)
    calls = corpus()
    x = features(calls)
    y = np.array([c.label == "eligible" for c in calls], dtype=int)
    threshold = choose_threshold(calls, x, y, args.keep)
    if args.report:
        return 0
    model = fit(x, y)
    weights = model.coef_[0].astype(np.float32)
    indices = np.flatnonzero(weights).astype(np.int32)
    table = np.zeros(len(indices), dtype=WEIGHT_DTYPE)
    table["index"], table["value"] = indices, weights[indices]
    buffer = BytesIO()
    np.save(buffer, table, allow_pickle=False)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "weights.npy.gz").write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    meta = {
        "version": VERSION,
        "about": "P(eligible) from tools/train_triage_model.py; lowers a decision, never raises",
        "trained_on": len(calls),
        "eligible": int(y.sum()),
        "C": C,
        "threshold": threshold,
        "intercept": float(np.float32(model.intercept_[0])),
        "vectorizers": VECTORIZERS,
    }
    (out / "model.json").write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
    print(f"{out}: {len(indices)} weights, threshold {threshold:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
