"""Push to dispatch: the relay against a real HTTP receiver on 127.0.0.1, on real commits."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from starlette.responses import Response

from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.dispatch.models import DeliveryAttempt, OutboxMessage
from corespond.dispatch.relay import DeliveryPolicy, Relay, retry_after
from corespond.dispatch.repository import notify_relay
from corespond.sources.models import CadSource
from corespond.sources.service import rotate_secret
from tests import program
from tests.conftest import Source, make_source
from tests.receiver import Receiver

FAST = DeliveryPolicy(
    concurrency=4,
    horizon=timedelta(hours=24),
    backoff_cap=timedelta(milliseconds=20),
    alert_after=timedelta(minutes=5),
)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=0.5) as client:
        yield client


@pytest.fixture
async def cad(committed_db: Database, box: SecretBox) -> Source:
    return await make_source(committed_db, box)


async def point_at(db: Database, source: Source, url: str | None) -> None:
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(CadSource).where(CadSource.id == source.id).values(callback_url=url)
        )


async def messages(
    db: Database, source: Source, calls: int = 1, each: int = 1, **call_fields: object
) -> list[OutboxMessage]:
    """``each`` messages for each of ``calls`` calls, committed, as matching writes them."""
    made = []
    async with db.sessionmaker() as session, session.begin():
        for _ in range(calls):
            call = await program.call(session, source.id, **call_fields)  # type: ignore[arg-type]
            for seq in range(1, each + 1):
                message = OutboxMessage(
                    id=uuid.uuid4(),
                    source_id=source.id,
                    call_id=call.id,
                    seq=seq,
                    event_type="assignment.offered",
                    payload={
                        "type": "assignment.offered",
                        "timestamp": datetime.now(UTC).isoformat(),
                        "data": {
                            "sequence": seq,
                            "call": {"incident_number": call.incident_number},
                        },
                    },
                )
                session.add(message)
                made.append(message)
    return made


async def stored(db: Database, message_id: uuid.UUID) -> OutboxMessage:
    async with db.sessionmaker() as session:
        message = await session.get(OutboxMessage, message_id)
        assert message is not None
        return message


async def attempts(db: Database, message_id: uuid.UUID) -> list[DeliveryAttempt]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.message_id == message_id)
            .order_by(DeliveryAttempt.id)
        )
        return list(rows)


async def drain_until_settled(relay: Relay, db: Database, seconds: float = 10) -> None:
    """Drain, waiting out short backoffs, until nothing is pending."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        await relay.drain()
        async with db.sessionmaker() as session:
            pending = await session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.state == "pending").limit(1)
            )
        if pending is None:
            return
        await asyncio.sleep(0.03)
    raise AssertionError("messages still pending")


async def test_delivered_signed_and_logged(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    receiver = await Receiver(cad.secret).start()
    try:
        await point_at(committed_db, cad, receiver.url)
        [message] = await messages(committed_db, cad)
        relay = Relay(committed_db, http, box, FAST)
        assert await relay.drain() == 1
    finally:
        await receiver.stop()
    [got] = receiver.received
    assert got.verified  # the standardwebhooks library accepted the signature
    assert got.webhook_id == str(message.id)
    assert got.event["type"] == "assignment.offered"
    after = await stored(committed_db, message.id)
    assert (after.state, after.attempts, after.last_status_code) == ("delivered", 1, 204)
    [attempt] = await attempts(committed_db, message.id)
    assert attempt.outcome == "delivered"
    assert attempt.url == receiver.url
    assert attempt.latency_ms is not None


async def test_retried_until_the_receiver_answers(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    async def flaky(number: int) -> Response:
        return Response(status_code=500 if number <= 3 else 200, content=b"busy" * 500)

    receiver = await Receiver(cad.secret, flaky).start()
    try:
        await point_at(committed_db, cad, receiver.url)
        [message] = await messages(committed_db, cad)
        await drain_until_settled(Relay(committed_db, http, box, FAST), committed_db)
    finally:
        await receiver.stop()
    log = await attempts(committed_db, message.id)
    assert [a.outcome for a in log] == ["retry", "retry", "retry", "delivered"]
    assert [a.status_code for a in log] == [500, 500, 500, 200]
    assert log[0].response_body is not None
    assert len(log[0].response_body) == 1024
    assert len(receiver.received) == 1


async def test_a_hanging_receiver_times_out_and_is_retried(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    async def hang_once(number: int) -> Response:
        if number == 1:
            await asyncio.sleep(1.5)  # past the client's 0.5 s timeout
        return Response(status_code=204)

    receiver = await Receiver(cad.secret, hang_once).start()
    try:
        await point_at(committed_db, cad, receiver.url)
        [message] = await messages(committed_db, cad)
        await drain_until_settled(Relay(committed_db, http, box, FAST), committed_db)
    finally:
        await receiver.stop()
    log = await attempts(committed_db, message.id)
    assert log[0].outcome == "retry"
    assert log[0].error is not None
    assert log[0].error.startswith("timeout")
    assert log[-1].outcome == "delivered"


async def test_gone_is_dead_at_once_and_the_call_moves_on(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    async def gone_first(number: int) -> Response:
        return Response(status_code=410 if number == 1 else 204)

    receiver = await Receiver(cad.secret, gone_first).start()
    try:
        await point_at(committed_db, cad, receiver.url)
        first, second = await messages(committed_db, cad, each=2)
        await drain_until_settled(Relay(committed_db, http, box, FAST), committed_db)
    finally:
        await receiver.stop()
    dead = await stored(committed_db, first.id)
    assert (dead.state, dead.attempts) == ("dead", 1)
    assert "410" in (dead.last_error or "")
    assert (await stored(committed_db, second.id)).state == "delivered"


async def test_a_redirect_is_not_followed(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    async def redirect(_: int) -> Response:
        return Response(status_code=307, headers={"location": "http://169.254.169.254/"})

    receiver = await Receiver(cad.secret, redirect).start()
    try:
        await point_at(committed_db, cad, receiver.url)
        [message] = await messages(committed_db, cad)
        await Relay(committed_db, http, box, FAST).drain()
    finally:
        await receiver.stop()
    assert (await stored(committed_db, message.id)).state == "dead"
    assert receiver.hits == 1


async def test_retry_after_is_honoured(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    async def slow_down(_: int) -> Response:
        return Response(status_code=429, headers={"retry-after": "120"})

    receiver = await Receiver(cad.secret, slow_down).start()
    try:
        await point_at(committed_db, cad, receiver.url)
        [message] = await messages(committed_db, cad)
        before = datetime.now(UTC)
        await Relay(committed_db, http, box, FAST).drain()
    finally:
        await receiver.stop()
    after = await stored(committed_db, message.id)
    assert after.state == "pending"
    wait = after.next_attempt_at - before
    assert timedelta(seconds=118) < wait < timedelta(seconds=125)


async def test_down_then_back(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    receiver = await Receiver(cad.secret).start()
    port = receiver.port
    await receiver.stop()  # the CAD endpoint goes down
    await point_at(committed_db, cad, receiver.url)
    [message] = await messages(committed_db, cad)
    relay = Relay(committed_db, http, box, FAST)
    await relay.drain()
    down = await stored(committed_db, message.id)
    assert down.state == "pending"
    assert down.attempts == 1
    assert "ConnectError" in (down.last_error or "")
    back = await Receiver(cad.secret, port=port).start()  # and comes back
    try:
        await drain_until_settled(relay, committed_db)
    finally:
        await back.stop()
    assert [r.webhook_id for r in back.received] == [str(message.id)]


async def test_the_horizon_ends_retries(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    await point_at(committed_db, cad, "http://127.0.0.1:9/nothing-listens-here")
    [message] = await messages(committed_db, cad)
    async with committed_db.sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id)
            .values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )
    await Relay(committed_db, http, box, FAST).drain()
    dead = await stored(committed_db, message.id)
    assert dead.state == "dead"
    assert "horizon" in (dead.last_error or "")


async def test_a_source_without_a_callback_keeps_its_messages(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    [message] = await messages(committed_db, cad)
    await Relay(committed_db, http, box, FAST).drain()
    kept = await stored(committed_db, message.id)
    assert (kept.state, kept.attempts) == ("pending", 0)  # not an attempt, not an alert
    assert kept.last_error == "no callback URL configured for this source"
    assert kept.next_attempt_at > datetime.now(UTC) + timedelta(minutes=4)


async def test_order_per_call_with_calls_in_parallel(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    rng = random.Random(3)

    async def jittery(number: int) -> Response:
        await asyncio.sleep(rng.uniform(0, 0.02))
        return Response(status_code=503 if rng.random() < 0.2 else 204)

    receiver = await Receiver(cad.secret, jittery).start()
    try:
        await point_at(committed_db, cad, receiver.url)
        made = await messages(committed_db, cad, calls=12, each=5)
        await drain_until_settled(Relay(committed_db, http, box, FAST), committed_db, 30)
    finally:
        await receiver.stop()
    # Delivery is at least once: an answer lost to a timeout under load is sent again with
    # the same webhook-id, which a receiver drops. Read as a receiver does, each call's
    # messages arrive in order, every one of them.
    by_call: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for got in receiver.delivered():
        if got.webhook_id in seen:
            continue
        seen.add(got.webhook_id)
        data = got.event["data"]
        by_call[data["call"]["incident_number"]].append(data["sequence"])
    assert len(by_call) == 12
    assert all(seqs == [1, 2, 3, 4, 5] for seqs in by_call.values()), by_call
    assert len(seen) == len(made)


async def test_restart_delivers_what_was_committed_before_the_crash(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    async def hang(number: int) -> Response:
        if number == 1:
            await asyncio.sleep(3)
        return Response(status_code=204)

    receiver = await Receiver(cad.secret, hang).start()
    try:
        await point_at(committed_db, cad, receiver.url)
        [message] = await messages(committed_db, cad)
        async with httpx.AsyncClient(timeout=10) as patient:
            dying = asyncio.create_task(Relay(committed_db, patient, box, FAST).drain())
            await asyncio.sleep(0.5)  # mid-delivery …
            dying.cancel()  # … the relay is killed
            with pytest.raises(asyncio.CancelledError):
                await dying
        left = await stored(committed_db, message.id)
        assert (left.state, left.attempts) == ("pending", 0)  # nothing half-recorded
        await drain_until_settled(Relay(committed_db, http, box, FAST), committed_db)
    finally:
        await receiver.stop()
    # At least once: the receiver may also have finished the first request after the relay
    # died; the same webhook-id lets it drop the repeat.
    assert {r.webhook_id for r in receiver.received} == {str(message.id)}
    done = await stored(committed_db, message.id)
    assert (done.state, done.attempts) == ("delivered", 1)


async def test_two_relays_on_one_database(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    async def steady(_: int) -> Response:
        await asyncio.sleep(0.005)
        return Response(status_code=204)

    receiver = await Receiver(cad.secret, steady).start()
    other = Database.connect(committed_db.engine.url.render_as_string(hide_password=False))
    try:
        await point_at(committed_db, cad, receiver.url)
        made = await messages(committed_db, cad, calls=10, each=4)
        one = Relay(committed_db, http, box, FAST)
        two = Relay(other, http, box, FAST)
        counts = await asyncio.gather(one.drain(), two.drain())
        await drain_until_settled(one, committed_db)
    finally:
        await receiver.stop()
        await other.dispose()
    ids = [r.webhook_id for r in receiver.received]
    assert sorted(ids) == sorted(str(m.id) for m in made)  # every message, none twice
    assert all(counts)  # both relays took a share
    by_call: dict[str, list[int]] = defaultdict(list)
    for got in receiver.received:
        data = got.event["data"]
        by_call[data["call"]["incident_number"]].append(data["sequence"])
    assert all(seqs == [1, 2, 3, 4] for seqs in by_call.values())


async def test_failing_source_raises_an_alert_and_clears_it(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    await point_at(committed_db, cad, "http://127.0.0.1:9/down")
    await messages(committed_db, cad)
    now = datetime.now(UTC)
    relay = Relay(committed_db, http, box, FAST, clock=lambda: now)
    await relay.drain()
    assert await relay.check_sources() == []  # failing, but not for long yet
    relay._clock = lambda: now + timedelta(minutes=6)
    assert await relay.check_sources() == [cad.id]
    async with committed_db.sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage).values(state="delivered", delivered_at=now + timedelta(minutes=6))
        )
    assert await relay.check_sources() == []  # a delivery after the failures: recovered


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120),
        ("0", 0),
        ("99999999999999999999", 24 * 3600),  # clamped to the horizon
        ("\u00b2", None),  # a digit to str.isdigit, not to HTTP
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0),  # a date in the past: now
        ("Mon, 23 Nov 2026 12:10:00 GMT", 600),
    ],
)
def test_retry_after_header(header: str, seconds: int | None) -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    wait = retry_after(header, now, timedelta(hours=24))
    assert (wait.total_seconds() if wait is not None else None) == seconds


async def test_signed_with_every_live_secret_during_a_rotation(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    receiver = await Receiver(cad.secret).start()  # the CAD still verifies with the old one
    try:
        await point_at(committed_db, cad, receiver.url)
        async with committed_db.sessionmaker() as session, session.begin():
            await rotate_secret(
                session, box, cad.id, grace=timedelta(hours=24), now=datetime.now(UTC)
            )
        [message] = await messages(committed_db, cad)
        await Relay(committed_db, http, box, FAST).drain()
    finally:
        await receiver.stop()
    assert [r.verified for r in receiver.received] == [True]
    assert (await stored(committed_db, message.id)).state == "delivered"


async def test_a_source_refusing_everything_raises_the_alert(
    committed_db: Database, cad: Source, box: SecretBox, http: httpx.AsyncClient
) -> None:
    async def unauthorised(_: int) -> Response:
        return Response(status_code=401)

    receiver = await Receiver(cad.secret, unauthorised).start()
    try:
        await point_at(committed_db, cad, receiver.url)
        await messages(committed_db, cad, calls=3)
        now = datetime.now(UTC)
        relay = Relay(committed_db, http, box, FAST, clock=lambda: now)
        await relay.drain()
    finally:
        await receiver.stop()
    relay._clock = lambda: now + timedelta(minutes=10)
    assert await relay.check_sources() == [cad.id]


async def test_the_relay_wakes_on_notify_and_does_not_spin(
    committed_db: Database,
    cad: Source,
    box: SecretBox,
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from corespond.dispatch import repository

    claims = 0
    real_claim = repository.claim_next

    async def counting(*args: object, **kwargs: object) -> OutboxMessage | None:
        nonlocal claims
        claims += 1
        return await real_claim(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repository, "claim_next", counting)
    receiver = await Receiver(cad.secret).start()
    relay = Relay(committed_db, http, box, FAST)
    try:
        await point_at(committed_db, cad, receiver.url)
        # Message 1 waits out a long backoff; message 2 is due but must wait behind it.
        first, second = await messages(committed_db, cad, each=2)
        async with committed_db.sessionmaker() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == first.id)
                .values(next_attempt_at=datetime.now(UTC) + timedelta(hours=1), attempts=1)
            )
        await relay.start()
        await asyncio.sleep(1.5)
        assert claims < 20, claims  # a handful of passes, not a busy loop
        # A new message on another call is delivered at once: NOTIFY woke the relay.
        [woken] = await messages(committed_db, cad)
        async with committed_db.sessionmaker() as session, session.begin():
            await notify_relay(session)
        for _ in range(100):
            if any(r.webhook_id == str(woken.id) for r in receiver.received):
                break
            await asyncio.sleep(0.02)
    finally:
        await relay.stop()
        await receiver.stop()
    assert [r.webhook_id for r in receiver.received] == [str(woken.id)]
    assert (await stored(committed_db, second.id)).state == "pending"


async def test_a_cad_whose_callback_hangs_does_not_hold_back_another_cads_messages(
    committed_db: Database, cad: Source, box: SecretBox
) -> None:
    """Eight messages to a CAD that does not answer in time (each attempt waits out the 2 s
    timeout)
    are due before one message to a healthy CAD: the healthy one is delivered at once,
    because a slow CAD holds at most ``per_source`` lanes (with no such limit it waits
    for two rounds of timeouts)."""
    other = await make_source(committed_db, box, "logan-911")

    async def hang(number: int) -> Response:
        await asyncio.sleep(2.5)
        return Response(status_code=204)

    slow = await Receiver(cad.secret, hang).start()
    healthy = await Receiver(other.secret).start()
    policy = dataclasses.replace(FAST, concurrency=4, per_source=2)
    try:
        await point_at(committed_db, cad, slow.url)
        await point_at(committed_db, other, healthy.url)
        await messages(committed_db, cad, calls=8)
        await messages(committed_db, other)
        async with httpx.AsyncClient(timeout=2) as client:
            relay = Relay(committed_db, client, box, policy)
            started = asyncio.get_running_loop().time()
            await relay.start()
            try:
                while not healthy.delivered():
                    assert asyncio.get_running_loop().time() - started < 1.5, "held back"
                    await asyncio.sleep(0.02)
            finally:
                await relay.stop()
    finally:
        await slow.stop()
        await healthy.stop()
    assert len(healthy.delivered()) == 1
