"""Folding events into a call: order-independent, partial updates (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from corespond.calls.folding import (
    FoldableEvent,
    fold_events,
    fold_onto,
    folds_onto,
    mark_of,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def event(kind: str, minute: int, seq: int, **changes: Any) -> FoldableEvent:
    return FoldableEvent(
        event_type=f"call.{kind}",
        occurred_at=T0 + timedelta(minutes=minute),
        sequence=seq,
        changes=changes,
    )


HISTORY = [
    event(
        "created",
        0,
        1,
        agency="CHARLESTON PD",
        call_type="OD",
        narrative="SUBJ UNRESPONSIVE",
        location={"address": "1 Capitol St", "city": "Charleston", "lat": 38.35, "lon": -81.63},
        hazards=[],
        status="dispatched",
    ),
    event("updated", 2, 2, narrative="SUBJ REVIVED, CONSCIOUS"),
    event("updated", 3, 3, location={"address": "3 Capitol St"}, status="onscene"),
    event("updated", 5, 4, hazards=["DOG ON PREMISES"]),
    event("closed", 9, 5),
]


def test_in_order_history_gives_the_latest_of_each_field() -> None:
    state = fold_events(HISTORY)
    assert state.narrative == "SUBJ REVIVED, CONSCIOUS"
    assert state.address == "3 Capitol St"
    assert state.city == "Charleston"  # a partial location keeps the other fields
    assert state.lat == 38.35
    assert state.hazards == ["DOG ON PREMISES"]
    assert state.status == "closed"
    assert state.opened_at == T0
    assert state.ended_at == T0 + timedelta(minutes=9)
    assert state.event_count == 5


@given(st.permutations(HISTORY))
def test_any_arrival_order_folds_to_the_in_order_result(shuffled: list[FoldableEvent]) -> None:
    # Receipt order (sequence) differs from occurred_at order; only occurred_at matters.
    resequenced = [
        FoldableEvent(e.event_type, e.occurred_at, i, e.changes) for i, e in enumerate(shuffled)
    ]
    assert fold_events(resequenced) == fold_events(HISTORY)


def test_update_before_create_still_ends_with_create_fields_underneath() -> None:
    update = event("updated", 5, 1, status="onscene")
    create = event("created", 1, 2, agency="LOGAN COUNTY SHERIFF", call_type="INTOX", status="x")
    state = fold_events([update, create])
    assert state.status == "onscene"
    assert state.agency == "LOGAN COUNTY SHERIFF"
    assert state.opened_at == T0 + timedelta(minutes=1)


def test_an_update_without_its_create_makes_a_partial_open_call() -> None:
    state = fold_events([event("updated", 1, 1, narrative="RP CALLING BACK")])
    assert state.status == "open"
    assert state.agency is None
    assert state.narrative == "RP CALLING BACK"


def test_explicit_null_clears_a_field() -> None:
    state = fold_events([*HISTORY[:1], event("updated", 1, 2, narrative=None, location=None)])
    assert state.narrative is None
    assert state.address is None
    assert state.lat is None


def test_cancelled_call_then_reopened_by_a_later_update() -> None:
    state = fold_events(
        [*HISTORY[:1], event("cancelled", 4, 2), event("updated", 6, 3, status="dispatched")]
    )
    assert state.status == "dispatched"
    assert state.ended_at is None
    cancelled = fold_events([*HISTORY[:1], event("cancelled", 4, 2)])
    assert cancelled.status == "cancelled"
    assert cancelled.ended_at == T0 + timedelta(minutes=4)


def test_same_instant_events_apply_in_receipt_order() -> None:
    first = event("updated", 1, 1, narrative="FIRST")
    second = event("updated", 1, 2, narrative="SECOND")
    assert fold_events([second, first]).narrative == "SECOND"


def test_an_update_with_a_closed_status_ends_the_call() -> None:
    state = fold_events([*HISTORY[:1], event("updated", 7, 2, status="closed")])
    assert state.status == "closed"
    assert state.ended_at == T0 + timedelta(minutes=7)


kinds = st.sampled_from(["created", "updated", "updated", "updated", "closed", "cancelled"])
changes = st.fixed_dictionaries(
    {},
    optional={
        "narrative": st.sampled_from(["A", "B", None]),
        "status": st.sampled_from(["dispatched", "onscene", "closed", None]),
        "location": st.sampled_from([None, {"address": "X"}, {"lat": 38.1, "lon": -81.2}]),
        "hazards": st.sampled_from([[], ["DOG"], None]),
        "agency": st.sampled_from(["CHARLESTON PD", "KCSO"]),
    },
)
histories = st.lists(st.tuples(kinds, st.integers(0, 5), changes), min_size=1, max_size=8).map(
    lambda items: [event(k, m, i, **c) for i, (k, m, c) in enumerate(items)]
)


@given(histories, st.integers(0, 8))
def test_folding_new_events_onto_the_folded_state_equals_folding_everything(
    history: list[FoldableEvent], split: int
) -> None:
    earlier, later = history[:split], history[split:]
    last = max(map(mark_of, earlier), default=None)
    if folds_onto(len(earlier), last, later):
        assert fold_onto(fold_events(earlier), later) == fold_events(history)
    else:  # an event that sorts before one folded already, or a late create: refolded
        assert later
        assert min(map(mark_of, later)) <= last or any(  # type: ignore[operator]
            e.event_type == "call.created" for e in later
        )


def test_an_event_at_the_same_instant_as_the_last_folded_one_folds_onto_it() -> None:
    earlier = [event("created", 0, 1, narrative="A", agency="X", call_type="OD")]
    later = [event("updated", 0, 2, narrative="B"), event("updated", 0, 3, status="onscene")]
    assert folds_onto(1, mark_of(earlier[0]), later)
    assert fold_onto(fold_events(earlier), later) == fold_events(earlier + later)


def test_an_event_that_sorts_before_a_folded_one_is_not_folded_onto_it() -> None:
    earlier = [event("created", 0, 1), event("updated", 5, 2, narrative="LATE")]
    assert not folds_onto(2, mark_of(earlier[1]), [event("updated", 3, 3, narrative="EARLY")])
    assert not folds_onto(2, mark_of(earlier[1]), [event("created", 6, 3)])
