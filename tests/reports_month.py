"""March 2026 in Kanawha and Cabell, seeded with figures known by hand (for the reports'
tests: the API, the page's charts, and the browser).

America/New_York; clocks go forward at 02:00 on Sunday 8 March. The month's weeks:
Mar 1 (a Sunday alone), Mar 2-8, 9-15, 16-22, 23-29, 30-31.

=====  ========  =============  ===========================================================
call   county    opened (local)  what happened
=====  ========  =============  ===========================================================
K1     Kanawha   Sun 1  10:00   eligible; offered 10:02, accepted 10:05; en route; cleared:
                                referred to detox and MAT
K2     Kanawha   Tue 3  09:00   eligible; A declined; B offered 09:04, accepted 09:05; en
                                route; cleared: contact made
K3     Kanawha   Sun 8  01:30   eligible (EST, before the change); A let the offer expire;
                                the request went unfilled
K4     Kanawha   Sun 8  03:30   review (EDT); requested anyway; accepted after 6 minutes;
                                cancelled when CAD closed the call
K5     Kanawha   Mon 9  00:00   eligible; never requested (the first instant of its week)
K6     Kanawha   Tue 10         ineligible, never requested: counted nowhere
C1     Cabell    Mon 16 12:00   eligible; accepted after 2 minutes; en route; cleared:
                                referred to outpatient and detox
C2     Cabell    Sun 22 23:59   turned dangerous (ineligible now); requested before; the
                                offer cancelled for danger before anyone accepted
C4     Cabell    Fri 27 14:00   eligible; accepted after 4 minutes; en route; cleared: no
                                contact
N1     (none)    Wed 25         eligible, placed in no county; never requested
C3     Cabell    Tue 31 23:30   eligible (03:30 UTC on 1 April); its offer still waiting
K7     Kanawha   Wed Apr 1 0:00 eligible: April, not counted
K8     Kanawha   Sat Feb 28 23:59  eligible (04:59 UTC on 1 March): February, not counted
=====  ========  =============  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments.models import Assignment, PeerRequest
from corespond.calls.models import Call
from corespond.roster.models import Peer
from tests import program
from tests.program import CABELL, KANAWHA

ZONE = ZoneInfo("America/New_York")
MONTH = "2026-03"

# The figures, as the page and the API must give them.
TOTAL = {
    "eligible": 8,
    "requested": 8,
    "filled": 5,
    "unfilled": 1,
    "cancelled": 1,
    "open": 1,
    "callouts": 4,
    "accepted_offers": 5,
    "median_minutes_offer_to_accept": 3.0,
    "cleared": 4,
    "outcomes": {"contact_made": 1, "referred": 2, "declined_services": 0, "no_contact": 1},
    "referrals": {
        "detox": 2,
        "inpatient": 0,
        "outpatient": 1,
        "mat": 1,
        "recovery_housing": 0,
        "other_services": 0,
    },
}
# Per week: (first day, eligible, requested, filled, unfilled, cancelled, open, callouts,
# median minutes from offer to acceptance).
WEEKS = [
    ("2026-03-01", 1, 1, 1, 0, 0, 0, 1, 3.0),
    ("2026-03-02", 2, 3, 2, 1, 0, 0, 1, 3.5),
    ("2026-03-09", 1, 0, 0, 0, 0, 0, 0, None),
    ("2026-03-16", 1, 2, 1, 0, 1, 0, 1, 2.0),
    ("2026-03-23", 2, 1, 1, 0, 0, 0, 1, 4.0),
    ("2026-03-30", 1, 1, 0, 0, 0, 1, 0, None),
]
# Per county: (fips or None, name, eligible, requested, filled, unfilled, cancelled, open,
# callouts), in the order the report lists them.
COUNTIES = [
    (CABELL, "Cabell", 3, 4, 2, 0, 1, 1, 2),
    (KANAWHA, "Kanawha", 4, 4, 3, 1, 0, 0, 2),
    (None, "no county found", 1, 0, 0, 0, 0, 0, 0),
]


def local(day: int, hour: int = 12, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


@dataclass
class Month:
    peers: dict[str, Peer]
    calls: dict[str, Call]


async def _call(
    session: AsyncSession,
    source_id: str,
    name: str,
    opened: datetime,
    county: str | None,
    decision: str = "eligible",
) -> Call:
    row = await program.call(
        session,
        source_id,
        incident_number=f"MAR-{name}",
        county=county,
        at=None,
        decision=decision,
    )
    row.opened_at = opened
    await session.flush()
    return row


async def _request(session: AsyncSession, call: Call, at: datetime) -> PeerRequest:
    request = PeerRequest(call_id=call.id, trigger="dispatcher", requested_by="test", created_at=at)
    session.add(request)
    await session.flush()
    return request


async def _offer(
    session: AsyncSession,
    request: PeerRequest,
    peer: Peer | None,
    status: str,
    offered: datetime,
    accepted_after: float | None = None,
    *,
    en_route: bool = False,
    outcome: str | None = None,
    referrals: tuple[str, ...] = (),
) -> Assignment:
    accepted = offered + timedelta(minutes=accepted_after) if accepted_after is not None else None
    row = Assignment(
        request_id=request.id,
        call_id=request.call_id,
        peer_id=peer.id if peer else None,
        provider_id=peer.provider_id if peer else None,
        status=status,
        created_at=offered,
        offered_at=offered if peer else None,
        expires_at=offered + timedelta(minutes=2) if peer else None,
        accepted_at=accepted,
        en_route_at=accepted + timedelta(minutes=1) if en_route and accepted else None,
        ended_at=None if status == "offered" else offered + timedelta(minutes=30),
        outcome=outcome,
        referrals=list(referrals),
    )
    session.add(row)
    await session.flush()
    return row


async def seed_march(session: AsyncSession, source_id: str) -> Month:
    """The month above (providers wvsl for Kanawha and rp for Cabell, peers A and B)."""
    await program.provider(session)
    await program.provider(session, "rp", {CABELL: "primary"})
    a = await program.peer(session, "Avery A")
    b = await program.peer(session, "Blake B")
    c = await program.peer(session, "Cory C", provider_id="rp", counties=(CABELL,))
    calls: dict[str, Call] = {}

    calls["K1"] = k1 = await _call(session, source_id, "K1", local(1, 10), KANAWHA)
    r = await _request(session, k1, local(1, 10, 1))
    await _offer(
        session,
        r,
        a,
        "cleared",
        local(1, 10, 2),
        3,
        en_route=True,
        outcome="referred",
        referrals=("detox", "mat"),
    )

    calls["K2"] = k2 = await _call(session, source_id, "K2", local(3, 9), KANAWHA)
    r = await _request(session, k2, local(3, 9, 1))
    await _offer(session, r, a, "declined", local(3, 9, 2))
    await _offer(session, r, b, "cleared", local(3, 9, 4), 1, en_route=True, outcome="contact_made")

    calls["K3"] = k3 = await _call(session, source_id, "K3", local(8, 1, 30), KANAWHA)
    r = await _request(session, k3, local(8, 1, 31))
    await _offer(session, r, a, "expired", local(8, 1, 31))
    await _offer(session, r, None, "unfilled", local(8, 1, 34))

    calls["K4"] = k4 = await _call(session, source_id, "K4", local(8, 3, 30), KANAWHA, "review")
    r = await _request(session, k4, local(8, 3, 31))
    await _offer(session, r, b, "cancelled", local(8, 3, 31), 6)

    calls["K5"] = await _call(session, source_id, "K5", local(9, 0, 0), KANAWHA)
    calls["K6"] = await _call(session, source_id, "K6", local(10), KANAWHA, "ineligible")

    calls["C1"] = c1 = await _call(session, source_id, "C1", local(16, 12), CABELL)
    r = await _request(session, c1, local(16, 12, 1))
    await _offer(
        session,
        r,
        c,
        "cleared",
        local(16, 12, 1),
        2,
        en_route=True,
        outcome="referred",
        referrals=("outpatient", "detox"),
    )

    calls["C2"] = c2 = await _call(session, source_id, "C2", local(22, 23, 59), CABELL)
    r = await _request(session, c2, local(22, 23, 59))
    await _offer(session, r, c, "cancelled", local(22, 23, 59))
    c2.decision = "ineligible"
    c2.turned_dangerous_at = local(23, 0, 5)

    calls["C4"] = c4 = await _call(session, source_id, "C4", local(27, 14), CABELL)
    r = await _request(session, c4, local(27, 14, 1))
    await _offer(session, r, c, "cleared", local(27, 14, 2), 4, en_route=True, outcome="no_contact")

    calls["N1"] = await _call(session, source_id, "N1", local(25), None)

    calls["C3"] = c3 = await _call(session, source_id, "C3", local(31, 23, 30), CABELL)
    r = await _request(session, c3, local(31, 23, 30))
    await _offer(session, r, c, "offered", local(31, 23, 31))

    calls["K7"] = await _call(session, source_id, "K7", local(1, 0, 0, month=4), KANAWHA)
    calls["K8"] = await _call(session, source_id, "K8", local(28, 23, 59, month=2), KANAWHA)
    await session.flush()
    return Month({"A": a, "B": b, "C": c}, calls)
