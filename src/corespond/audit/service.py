"""Writing and checking the audit log.

Entries are chained: each one's hash covers the previous hash and its own content, taken
under a transaction-scoped advisory lock so the chain has one order. ``verify`` recomputes
the chain and names the first entry that does not match. The chain alone cannot show that
its newest entries were removed; a last hash kept outside the database from an earlier
verification can: ``verify(expect_last=...)`` looks for it in the chain.

The chain's key is derived from the newest ``CORESPOND_SECRET_KEY``. When that key is
rotated the chain rolls over: new entries are written under the new key's chain key, and
``retire_chain_keys`` keeps the older chain keys (sealed under the new secret key) with the
last entry each may have written, so that the whole log still verifies once the old secret
key is gone, and nothing appended after the rotation verifies under an old one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.audit import repository
from corespond.audit.models import AuditEntry, RetiredChainKey
from corespond.auth.service import Principal
from corespond.clock import system_clock
from corespond.crypto import SecretBox, UnreadableSecret, fingerprint

CHAIN_LOCK = "corespond-audit-chain"
CHAIN_PURPOSE = "audit-chain"

# The chain is an HMAC under a key derived from CORESPOND_SECRET_KEY, which never enters the
# database unsealed: someone who can write rows cannot forge a chain that verifies.
_chain_key: bytes = b""
# The chain keys an entry may verify under, whatever its place (those of every configured
# secret key: while a new key is rolled out, processes not yet restarted write under the
# older one), and the box that opens retired chain keys.
_accepted: tuple[bytes, ...] = ()
_box: SecretBox | None = None


def use_chain_key(key: bytes) -> None:
    """Set the HMAC key of the chain, the only one accepted (tests)."""
    global _chain_key, _accepted, _box
    _chain_key, _accepted, _box = key, (key,), None


def use_secret_box(box: SecretBox) -> None:
    """Write the chain under the newest secret key's chain key; verify under any configured
    key's, and under retired keys up to their last entry (the application and the CLI)."""
    global _chain_key, _accepted, _box
    _chain_key = box.derived_key(CHAIN_PURPOSE)
    _accepted = tuple(box.derived_keys(CHAIN_PURPOSE))
    _box = box


def canonical(entry: AuditEntry) -> bytes:
    """The content an entry's hash covers (everything but its id and hashes)."""
    content = {
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "key_id": str(entry.key_id) if entry.key_id else None,
        "actor": entry.actor,
        "role": entry.role,
        "action": entry.action,
        "record_type": entry.record_type,
        "record_id": entry.record_id,
        "request_id": entry.request_id,
        "detail": entry.detail or {},
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(prev: bytes | None, entry: AuditEntry, key: bytes | None = None) -> bytes:
    chain_key = _chain_key if key is None else key
    return hmac.new(chain_key, (prev or b"") + canonical(entry), hashlib.sha256).digest()


@dataclass(frozen=True)
class _ChainKeys:
    """The keys an entry may verify under: each with the last entry id it may have written
    (None: any)."""

    keys: tuple[tuple[bytes, int | None], ...]

    def verifies(self, prev: bytes | None, entry: AuditEntry) -> bool:
        return any(
            hmac.compare_digest(entry.hash, chain_hash(prev, entry, key))
            for key, last in self.keys
            if last is None or entry.id <= last
        )


async def _chain_keys(session: AsyncSession) -> _ChainKeys:
    """The keys entries verify under. A key a rotation retired verifies only the entries it
    wrote up to its retirement, even while its secret key is still configured (after the
    newest, for reading old secrets): an entry it keys after that (a forgotten process, a
    holder of the old key) never verifies. Only the newest configured key is unbounded."""
    retired = await repository.retired_keys(session)
    bound = {row.fingerprint: row.last_entry_id for row in retired}
    configured = _accepted or (_chain_key,)
    keys: list[tuple[bytes, int | None]] = [
        (key, None if index == 0 else bound.get(fingerprint(key)))
        for index, key in enumerate(configured)
    ]
    box = _box
    for row in retired:
        if box is None:
            raise RuntimeError("retired audit chain keys are opened with the secret key box")
        keys.append((bytes.fromhex(box.open(row.ciphertext)), row.last_entry_id))
    return _ChainKeys(tuple(keys))


class LateChainEntries(RuntimeError):
    """Entries after a retired chain key's retirement that only that key verifies: its
    bound is not extended over them unless the operator accepts them, by id."""

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = list(ids)
        super().__init__(
            "audit entries "
            + ", ".join(str(i) for i in self.ids)
            + " were written after the rotation under a retired key: find out who wrote "
            "them (a process still on the old key, or someone holding it); to keep them as "
            "genuine, run again accepting them by id (--accept-late-entries)"
        )


async def _only_under(
    session: AsyncSession, key: bytes, others: Sequence[bytes], after: int, last: int
) -> list[int]:
    """Entries in (after, last] that ``key`` verifies and none of ``others`` does."""
    found: list[int] = []
    cursor = after
    while rows := await repository.entries_after(session, cursor, 500):
        for entry in rows:
            if entry.id > last:
                return found
            cursor = entry.id
            mine = hmac.compare_digest(entry.hash, chain_hash(entry.prev_hash, entry, key))
            if mine and not any(
                hmac.compare_digest(entry.hash, chain_hash(entry.prev_hash, entry, other))
                for other in others
            ):
                found.append(entry.id)
    return found


async def record(
    session: AsyncSession,
    principal: Principal | None,
    action: str,
    record_type: str,
    record_id: str | uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
    *,
    actor: str | None = None,
) -> AuditEntry:
    """Append an entry in the caller's transaction (it stands or falls with what it records).

    The request id is ours; an id the client sent is kept in ``detail`` as
    ``caller_request_id``, for matching the entry to the client's own records."""
    context = structlog.contextvars.get_contextvars()
    detail = dict(detail or {})
    if context.get("caller_request_id"):
        detail["caller_request_id"] = context["caller_request_id"]
    await repository.lock_chain(session, CHAIN_LOCK)
    prev = await repository.last_hash(session)
    entry = AuditEntry(
        at=system_clock(),  # the log says when it was really done, whatever clock the caller reads
        key_id=principal.key_id if principal else None,
        actor=actor or (principal.name if principal else "corespond"),
        role=principal.role if principal else None,
        action=action,
        record_type=record_type,
        record_id=str(record_id) if record_id is not None else None,
        request_id=context.get("request_id"),
        detail=detail,
        prev_hash=prev,
    )
    entry.hash = chain_hash(prev, entry)
    await repository.add(session, entry)
    return entry


@dataclass(frozen=True)
class Verification:
    entries: int
    broken_at: int | None  # id of the first entry whose hash does not match
    last_hash: bytes | None = None  # keep it outside the database to notice a cut tail
    # With an expected hash: the id of the entry that has it, None if none has (the log was
    # cut after it, or the hash is not from this log), and how many entries follow it.
    expected_at: int | None = None
    expected: bytes | None = None
    added_since_expected: int = 0
    # The role that verified could rewrite the log: the service should not run as it.
    rewritable: bool = False
    # Broken at the first entry: the first entry that verifies on its own under this key
    # (its hash over its own previous hash), None if none does (the key is not the chain's).
    first_verifying: int | None = None

    @property
    def key_mismatch(self) -> bool:
        """No entry verifies under this key: the chain was written with another secret key
        (or every entry was altered, which the key alone cannot tell apart)."""
        return self.broken_at is not None and self.entries == 0 and self.first_verifying is None

    @property
    def chain_intact(self) -> bool:
        return self.broken_at is None

    @property
    def cut(self) -> bool:
        """A hash was expected and the intact chain does not hold it."""
        return self.chain_intact and self.expected is not None and self.expected_at is None

    @property
    def intact(self) -> bool:
        return self.chain_intact and not self.cut


async def verify(
    session: AsyncSession, batch: int = 5000, *, expect_last: bytes | None = None
) -> Verification:
    """Recompute the chain from the first entry; with ``expect_last`` (the last hash of an
    earlier verification), also require an entry with that hash, wherever it now stands."""
    rewritable = await repository.may_rewrite(session)
    keys = await _chain_keys(session)
    prev: bytes | None = None
    count = 0
    last_id = 0
    expected_at: int | None = None
    expected_count = 0
    while True:
        rows = await repository.entries_after(session, last_id, batch)
        if not rows:
            since = count - expected_count if expected_at is not None else 0
            return Verification(count, None, prev, expected_at, expect_last, since, rewritable)
        for entry in rows:
            if entry.prev_hash != prev or not keys.verifies(prev, entry):
                first = await _first_verifying(session, keys, batch) if count == 0 else None
                return Verification(
                    count,
                    entry.id,
                    expected=expect_last,
                    rewritable=rewritable,
                    first_verifying=first,
                )
            prev = entry.hash
            count += 1
            last_id = entry.id
            if expect_last is not None and entry.hash == expect_last:
                expected_at, expected_count = entry.id, count


async def _first_verifying(session: AsyncSession, keys: _ChainKeys, batch: int) -> int | None:
    """The first entry whose hash these keys reproduce from its own content and previous
    hash. When the very first entry does not verify, this tells an altered first entry
    (later ones still verify) from a chain written under other keys (none does)."""
    last_id = 0
    while rows := await repository.entries_after(session, last_id, batch):
        for entry in rows:
            if keys.verifies(entry.prev_hash, entry):
                return entry.id
            last_id = entry.id
    return None


async def list_entries(
    session: AsyncSession, where: repository.AuditFilter, *, limit: int
) -> Sequence[AuditEntry]:
    """Entries newest first."""
    return await repository.list_entries(session, where, limit=limit)


@dataclass(frozen=True)
class ChainRollover:
    retired: int  # chain keys of older secret keys kept from now on
    resealed: int  # retired chain keys kept before, sealed again under the newest secret key
    last_entry_id: int | None  # the last entry the retired keys may have written


async def retire_chain_keys(
    session: AsyncSession,
    box: SecretBox,
    now: datetime,
    *,
    accept_late: Sequence[int] = (),
) -> ChainRollover:
    """Roll the chain over to the newest secret key: keep the chain key of each older
    configured secret key, sealed under the newest, for the entries written so far (taken
    under the chain's lock, so none is being written meanwhile), and seal the retired keys
    kept before under the newest. Run once every process writes under the newest key.

    A key retired before keeps its bound: entries written under it after its retirement
    are not silently made genuine (``LateChainEntries`` names them), unless the operator
    accepts them by id (``accept_late``); then the bound covers exactly those."""
    await repository.lock_chain(session, CHAIN_LOCK)
    last = await repository.last_entry_id(session)
    kept = {row.fingerprint: row for row in await repository.retired_keys(session)}
    resealed = 0
    for row in kept.values():
        if not box.is_current(row.ciphertext):
            try:
                row.ciphertext = box.reseal(row.ciphertext)
            except UnreadableSecret:
                raise UnreadableSecret(
                    f"the audit chain key retired {row.retired_at:%Y-%m-%d} cannot be decrypted "
                    "by any key in CORESPOND_SECRET_KEY: put the key of that rotation back in "
                    "it (after the newest) and run again"
                ) from None
            resealed += 1
    retired = 0
    if last is not None:
        for key in box.derived_keys(CHAIN_PURPOSE)[1:]:
            known = kept.get(fingerprint(key))
            if known is None:
                await repository.add_retired_key(
                    session,
                    RetiredChainKey(
                        fingerprint=fingerprint(key),
                        ciphertext=box.seal(key.hex()),
                        last_entry_id=last,
                        retired_at=now,
                    ),
                )
                retired += 1
            elif known.last_entry_id < last:
                # Never extended silently: what only the retired key wrote since its
                # retirement is named, and covered only when the operator accepts it.
                others = [k for k in box.derived_keys(CHAIN_PURPOSE) if k != key]
                late = await _only_under(session, key, others, known.last_entry_id, last)
                refused = [i for i in late if i not in set(accept_late)]
                if refused:
                    raise LateChainEntries(refused)
                if late:
                    known.last_entry_id = max(late)
    await session.flush()
    return ChainRollover(retired, resealed, last)
