"""Retention on a controllable clock: what is purged, what stays, the dry run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from corespond.calls.models import Call
from corespond.db import Database
from corespond.ingest.models import CadEvent
from corespond.ingest.service import process_pending
from corespond.retention.service import purge
from corespond.triage.models import TriageDecisionRecord
from corespond.triage.ruleset import load_rules
from tests.conftest import Source
from tests.helpers import cad_event, encode, signed_headers


async def test_narratives_are_purged_after_retention_and_outcomes_kept(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    body = encode(cad_event("r1", narrative="SUBJ SAYS HE USED FENTANYL, REVIVED, NO WEAPONS"))
    posted = await client.post(
        f"/v1/cad/{source.id}/events", content=body, headers=signed_headers(source.secret, body)
    )
    assert posted.status_code == 202
    closed = encode(cad_event("r2", "call.closed", "2026-11-23T05:00:00-05:00"))
    await client.post(
        f"/v1/cad/{source.id}/events", content=closed, headers=signed_headers(source.secret, closed)
    )
    async with db.sessionmaker() as session, session.begin():
        await process_pending(session, 100, load_rules())
    ended = datetime(2026, 11, 23, 10, tzinfo=UTC)

    async with db.sessionmaker() as session, session.begin():
        early = await purge(session, ended + timedelta(days=29), timedelta(days=30))
        assert early.calls == 0
        dry = await purge(session, ended + timedelta(days=31), timedelta(days=30), dry_run=True)
        assert dry.calls == 1
        call = await session.scalar(select(Call))
        assert call is not None
        assert "FENTANYL" in (call.narrative or "")

    async with db.sessionmaker() as session, session.begin():
        done = await purge(session, ended + timedelta(days=31), timedelta(days=30))
        assert done.calls == 1
    async with db.sessionmaker() as session:
        call = await session.scalar(select(Call))
        assert call is not None
        assert call.purged_at is not None
        assert "FENTANYL" not in (call.narrative or "")
        assert call.narrative
        assert call.narrative.startswith("[purged")
        assert call.decision_summary
        assert call.decision_summary in call.narrative
        assert (call.address, call.lat, call.lon) == (None, None, None)
        assert call.county_fips == "54039"  # the county stays
        assert call.county_detail is None  # which quoted the coordinates
        for event in await session.scalars(select(CadEvent)):
            assert "narrative" not in event.payload["call"]
            assert "location" not in event.payload["call"]
        for record in await session.scalars(select(TriageDecisionRecord)):
            assert all("detail" not in r for r in record.reasons)
            assert "FENTANYL" not in record.summary
    async with db.sessionmaker() as session, session.begin():
        again = await purge(session, ended + timedelta(days=40), timedelta(days=30))
        assert again.calls == 0  # once

    # A late event brings text back: the call is purged again (and may be re-triaged).
    # (The purge above ran on a clock 31 days ahead; put it back in real time first.)
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Call).values(purged_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    late = encode(
        cad_event("r3", "call.updated", "2026-11-23T05:30:00-05:00", narrative="SUBJ ON FENTANYL")
    )
    await client.post(
        f"/v1/cad/{source.id}/events", content=late, headers=signed_headers(source.secret, late)
    )
    async with db.sessionmaker() as session, session.begin():
        await process_pending(session, 100, load_rules())
    async with db.sessionmaker() as session, session.begin():
        refilled = await purge(session, datetime.now(UTC) + timedelta(days=400), timedelta(days=30))
        assert refilled.calls == 1
    async with db.sessionmaker() as session:
        call = await session.scalar(select(Call))
        assert call is not None
        assert "FENTANYL" not in (call.narrative or "")
