"""Standard Webhooks verification of inbound CAD requests, with several live secrets."""

from __future__ import annotations

import binascii
from collections.abc import Mapping, Sequence

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from corespond.errors import InvalidSignature

REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MAX_HEADER_CHARS = 4096


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

    last_error = "no matching signature found"
    for secret in secrets:
        try:
            Webhook(secret).verify(body, present, json_parse=False)
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
