"""Rotating ``CORESPOND_SECRET_KEY``: everything the key protects, brought under the newest
key in one transaction, so that the older keys can then be removed.

What the key protects: the CAD sources' signing secrets (sealed), the push key browsers
subscribe with (derived from the key until a rotation pins it, sealed), and the audit log's
chain (keyed by a key derived from it; rolled over to the newest key, older chain keys kept
sealed for the entries they wrote). The order of an operator's steps is in
docs/operations.md: a new key in front of the old one everywhere first, then this, then the
old key out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.audit import service as audit
from corespond.crypto import SecretBox, fingerprint
from corespond.notify import service as notify
from corespond.sources import service as sources


@dataclass(frozen=True)
class RotationReport:
    keys: int  # keys configured
    newest: str  # fingerprint of the newest key
    cad_secrets: sources.Resealed
    push_key: str  # pinned, resealed or current
    chain: audit.ChainRollover

    @property
    def changed(self) -> bool:
        return bool(
            self.cad_secrets.resealed
            or self.push_key != "current"
            or self.chain.retired
            or self.chain.resealed
        )

    def lines(self, *, dry_run: bool = False) -> list[str]:
        """What was done (or, ``dry_run``, would be), for a person."""
        done = "would be re-encrypted" if dry_run else "re-encrypted"
        chain = self.chain
        lines = [
            f"secret keys configured: {self.keys} (newest {self.newest})",
            f"CAD signing secrets: {self.cad_secrets.resealed} {done} under the newest key, "
            f"{self.cad_secrets.current} already under it",
            {
                "pinned": "push key (VAPID): pinned in the database, sealed under the newest "
                "key (phones keep their subscriptions)",
                "resealed": f"push key (VAPID): {done} under the newest key",
                "current": "push key (VAPID): already under the newest key",
            }[self.push_key],
        ]
        if chain.last_entry_id is None:
            lines.append("audit chain: no entries yet; new entries use the newest key")
        else:
            lines.append(
                f"audit chain: new entries use the newest key; {chain.retired} older chain "
                f"key(s) retired for entries up to {chain.last_entry_id}; {chain.resealed} "
                f"retired before {done}"
            )
        if dry_run:
            lines[2] = lines[2].replace("pinned in", "would be pinned in")
        return lines


async def rotate_secret_key(
    session: AsyncSession,
    box: SecretBox,
    now: datetime,
    *,
    actor: str,
    accept_late: Sequence[int] = (),
) -> RotationReport:
    """Seal every stored secret under the newest key of ``box``, pin the push key, roll the
    audit chain over to the newest key, and record it on the audit log (in the caller's
    transaction: all of it or none)."""
    cad_secrets = await sources.reseal_secrets(session, box)
    push_key = await notify.pin_push_key(session, box, now)
    chain = await audit.retire_chain_keys(session, box, now, accept_late=accept_late)
    report = RotationReport(
        keys=len(box.keys),
        newest=fingerprint(box.keys[0]),
        cad_secrets=cad_secrets,
        push_key=push_key,
        chain=chain,
    )
    await audit.record(
        session,
        None,
        "secret_key.rotate",
        "secret_key",
        report.newest,
        {
            "keys": report.keys,
            "cad_secrets_resealed": cad_secrets.resealed,
            "cad_secrets_current": cad_secrets.current,
            "push_key": push_key,
            "chain_keys_retired": chain.retired,
            "chain_keys_resealed": chain.resealed,
            "chain_retired_through": chain.last_entry_id,
            **({"late_entries_accepted": list(accept_late)} if accept_late else {}),
        },
        actor=actor,
    )
    return report
