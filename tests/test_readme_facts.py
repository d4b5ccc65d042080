"""What the README states about configuration and retries, checked against the code that
decides it."""

from __future__ import annotations

import random
import re
import typing
from datetime import timedelta

from corespond.config import PROJECT_ROOT, Settings
from corespond.dispatch.relay import backoff

README = (PROJECT_ROOT / "README.md").read_text()


class LongestWait(random.Random):
    """A fake jitter that always draws the top of its range: the backoff's ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_the_configuration_table_names_every_environment() -> None:
    row = next(line for line in README.splitlines() if line.startswith("| `CORESPOND_ENVIRONMENT`"))
    environments = typing.get_args(Settings.model_fields["environment"].annotation)
    assert environments == ("development", "test", "production")
    assert [e for e in environments if f"`{e}`" not in row] == []


def test_the_documented_delivery_backoff_is_the_relays() -> None:
    cap_seconds = Settings.model_fields["delivery_backoff_cap_seconds"].default
    cap = timedelta(seconds=cap_seconds)
    stated = re.findall(
        r"up to (\d+) s after the first[^,]*, up to (\d+) s after the second", README
    )
    assert len(stated) == 2  # in the walk-through and under "Push to dispatch"
    for first, second in stated:
        # The relay passes the attempts made so far, the failed one included.
        assert backoff(1, cap, LongestWait()) == timedelta(seconds=int(first))
        assert backoff(2, cap, LongestWait()) == timedelta(seconds=int(second))
    assert backoff(30, cap, LongestWait()) == cap
    assert f"`CORESPOND_DELIVERY_BACKOFF_CAP_SECONDS` ({cap_seconds:g})" in README
    assert cap == timedelta(minutes=10)  # "doubling to at most 10 minutes"
