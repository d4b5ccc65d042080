"""Standard Webhooks verification of inbound CAD requests, with several live secrets."""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping, Sequence

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from corespond.errors import InvalidSignature

REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MAX_HEADER_CHARS = 4096
_TIMESTAMP = re.compile(r"^\d{1,12}$")


def _well_formed(token: str) -> bool:
    version, sep, signature = token.partition(",")
    if not sep or version != "v1":
        return False
    try:
        return len(base64.b64decode(signature, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


@functools.lru_cache(maxsize=256)
def _webhook(secret: str) -> Webhook:
    # The secret decoded once, not on every event (sources are few; rotated-out secrets age
    # out of the cache as new ones come in).
    return Webhook(secret)


def verify(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> str:
    """Check the signature against each live secret; returns the ``webhook-id``.

    Raises ``InvalidSignature`` naming what is wrong: a missing header, a stale or future
    timestamp (5-minute tolerance), or no matching signature.
    """
    present = {name: headers.get(name, "") for name in REQUIRED_HEADERS}
    missing = [name for name, value in present.items() if not value]
    if missing:
        raise InvalidSignature(f"missing header(s): {', '.join(missing)}")
    if any(len(value) > MAX_HEADER_CHARS for value in present.values()):
        raise InvalidSignature("webhook headers are too long")
    if not secrets:
        raise InvalidSignature("this CAD source has no live signing secret")
    if not _TIMESTAMP.fullmatch(present["webhook-timestamp"]):
        raise InvalidSignature("webhook-timestamp must be integer Unix seconds")
    # Tokens of other versions or malformed ones are skipped, as the spec asks, so that one
    # bad token does not hide a valid signature next to it.
    tokens = [t for t in present["webhook-signature"].split(" ") if _well_formed(t)]
    if not tokens:
        raise InvalidSignature("webhook-signature holds no well-formed v1 signature")
    present["webhook-signature"] = " ".join(tokens)

    last_error = "no matching signature found"
    for secret in secrets:
        try:
            _webhook(secret).verify(body, present, json_parse=False)
        except WebhookVerificationError as exc:
            last_error = str(exc)
            if "timestamp" in last_error.lower() or "header" in last_error.lower():
                break  # the same for every secret
        except (ValueError, binascii.Error, UnicodeDecodeError):
            # Malformed signature list or body that is not UTF-8: no secret will match.
            last_error = "webhook-signature is malformed or the body is not UTF-8"
            break
        else:
            return present["webhook-id"]
    raise InvalidSignature(last_error[:1].lower() + last_error[1:])
