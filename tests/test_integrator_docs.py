"""What docs/integrating.md and the README promise a CAD integrator stays true."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from corespond.dispatch.outbox import payload
from corespond.dispatch.schemas import CallbackMessage
from corespond.ingest.eido import EIDO_MAPPING

ROOT = Path(__file__).parents[1]


def eido_table() -> str:
    rows = [f"| `{target}` | {source} |" for target, source in EIDO_MAPPING]
    return "\n".join(["| corespond field | read from the EIDO |", "|---|---|", *rows])


def test_the_eido_mapping_table_is_the_one_the_code_reads_by() -> None:
    for document in ("README.md", "docs/integrating.md"):
        assert eido_table() in (ROOT / document).read_text(), document


def test_the_callback_json_schema_is_current() -> None:
    written = json.loads((ROOT / "docs" / "callback-message.schema.json").read_text())
    assert written == CallbackMessage.model_json_schema()


def test_what_the_outbox_sends_matches_the_callback_schema() -> None:
    from corespond.assignments.models import Assignment
    from corespond.calls.models import Call

    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assignment = Assignment(
        status="offered",
        offered_at=now,
        expires_at=now,
        scene_secure_required=True,
        fallback=False,
    )
    call = Call(source_id="kanawha-911", incident_number="26-118734")
    body = payload("assignment.offered", now, assignment, call, None, None, 1)
    CallbackMessage.model_validate(json.loads(json.dumps(body)))
