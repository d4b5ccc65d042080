"""A learned second opinion on triage, used only to lower a decision.

A linear model (logistic regression over hashed word and character n-grams, built by
``tools/train_triage_model.py`` from the labelled corpus in ``tests/data``) reads the same
text as the rules and gives the probability that the call is eligible. It never makes a
call eligible: the rules must say ``eligible`` *and* the model must read the call as
eligible with at least its threshold, or the call goes to ``review`` with the model's
figure as the reason. Everything it needs ships as data in ``triage/model/`` (the hashing
parameters, the weights, the threshold), and its version is in every decision.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import math
from dataclasses import dataclass
from importlib import resources
from io import BytesIO
from typing import TYPE_CHECKING, Any

import numpy as np

from corespond.triage.text import normalise

if TYPE_CHECKING:
    from corespond.triage.classifier import TriageInput

WEIGHT_DTYPE = np.dtype([("index", "<i4"), ("value", "<f4")])


def model_text(
    call_type: str | None,
    description: str | None,
    narrative: str | None,
    hazards: tuple[str, ...] | list[str],
) -> str:
    """What the model reads of a call: the four fields, folded like the rules fold them."""
    return normalise(
        " | ".join([call_type or "", description or "", narrative or "", " ; ".join(hazards)])
    )


@dataclass(frozen=True)
class SecondOpinion:
    """The packaged model: ``probability(call)`` that a call is eligible."""

    version: str
    threshold: float
    vectorizers: tuple[Any, ...]
    weights: Any  # numpy float64 vector over the concatenated hashed features
    intercept: float

    def probability(self, call: TriageInput) -> float:
        from sklearn import config_context

        text = model_text(call.call_type, call.call_type_description, call.narrative, call.hazards)
        score = self.intercept
        offset = 0
        # scikit-learn checks its own arguments and arrays on every call, a third of the
        # time for one short text; ours are always well-formed (the same numbers either way).
        with config_context(skip_parameter_validation=True, assume_finite=True):
            for vectorizer in self.vectorizers:
                row = vectorizer.transform([text])
                score += float(row.data @ self.weights[offset + row.indices])
                offset += vectorizer.n_features
        return 1.0 / (1.0 + math.exp(-score))


def build_vectorizers(spec: list[dict[str, Any]]) -> tuple[Any, ...]:
    """scikit-learn hashing vectorizers from the parameters stored with the model."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return tuple(
        HashingVectorizer(
            analyzer=item["analyzer"],
            ngram_range=tuple(item["ngram_range"]),
            n_features=item["n_features"],
            alternate_sign=False,
            norm=item.get("norm", "l2"),
            lowercase=False,
            token_pattern=item.get("token_pattern", r"(?u)\b\w+\b"),
        )
        for item in spec
    )


@functools.cache
def packaged_second_opinion() -> SecondOpinion | None:
    """The model shipped in ``corespond/triage/model``, or None if it is absent."""
    folder = resources.files("corespond.triage").joinpath("model")
    meta_file = folder.joinpath("model.json")
    weights_file = folder.joinpath("weights.npy.gz")
    if not meta_file.is_file() or not weights_file.is_file():
        return None
    meta_bytes = meta_file.read_bytes()
    weights_bytes = weights_file.read_bytes()
    meta = json.loads(meta_bytes)
    vectorizers = build_vectorizers(meta["vectorizers"])
    table = np.load(BytesIO(gzip.decompress(weights_bytes)), allow_pickle=False)
    if table.dtype != WEIGHT_DTYPE:
        raise ValueError(f"triage/model/weights.npy.gz: expected {WEIGHT_DTYPE}, got {table.dtype}")
    weights = np.zeros(sum(v.n_features for v in vectorizers), dtype=np.float64)
    weights[table["index"]] = table["value"]
    digest = hashlib.sha256(meta_bytes + weights_bytes).hexdigest()[:8]
    return SecondOpinion(
        version=f"{meta['version']}#{digest}",
        threshold=float(meta["threshold"]),
        vectorizers=vectorizers,
        weights=weights,
        intercept=float(meta["intercept"]),
    )
