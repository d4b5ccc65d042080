"""Standard Webhooks verification of CAD requests (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corespond.errors import InvalidSignature
from corespond.ingest.signing import verify
from corespond.sources.service import generate_secret
from tests.helpers import signed_headers

BODY = b'{"event_id": "x"}'


def test_valid_signature_returns_the_webhook_id() -> None:
    secret = generate_secret()
    headers = signed_headers(secret, BODY, message_id="msg_1")
    assert verify(BODY, headers, [secret]) == "msg_1"


def test_signature_with_another_secret_is_refused() -> None:
    headers = signed_headers(generate_secret(), BODY)
    with pytest.raises(InvalidSignature, match="no matching signature"):
        verify(BODY, headers, [generate_secret()])


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(timedelta(minutes=-6), "too old"), (timedelta(minutes=6), "too new")],
)
def test_timestamp_outside_five_minutes_is_refused(offset: timedelta, reason: str) -> None:
    secret = generate_secret()
    headers = signed_headers(secret, BODY, at=datetime.now(UTC) + offset)
    with pytest.raises(InvalidSignature, match=reason):
        verify(BODY, headers, [secret])


def test_timestamp_within_tolerance_is_accepted() -> None:
    secret = generate_secret()
    headers = signed_headers(secret, BODY, at=datetime.now(UTC) - timedelta(minutes=4))
    verify(BODY, headers, [secret])


def test_tampered_body_is_refused() -> None:
    secret = generate_secret()
    headers = signed_headers(secret, BODY)
    with pytest.raises(InvalidSignature):
        verify(BODY.replace(b"x", b"y"), headers, [secret])


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_named(missing: str) -> None:
    secret = generate_secret()
    headers = signed_headers(secret, BODY)
    del headers[missing]
    with pytest.raises(InvalidSignature, match=missing):
        verify(BODY, headers, [secret])


def test_any_of_several_signatures_may_match() -> None:
    secret = generate_secret()
    headers = signed_headers(secret, BODY)
    other = signed_headers(generate_secret(), BODY, message_id=headers["webhook-id"])
    headers["webhook-signature"] = (
        f"{other['webhook-signature']} v2,abc {headers['webhook-signature']}"
    )
    verify(BODY, headers, [secret])


def test_old_and_new_secret_both_verify_during_rotation() -> None:
    old, new = generate_secret(), generate_secret()
    verify(BODY, signed_headers(old, BODY), [new, old])
    verify(BODY, signed_headers(new, BODY), [new, old])


def test_source_without_live_secret_is_refused() -> None:
    secret = generate_secret()
    with pytest.raises(InvalidSignature, match="no live signing secret"):
        verify(BODY, signed_headers(secret, BODY), [])


def test_malformed_signature_and_non_utf8_body_are_refused_not_crashing() -> None:
    secret = generate_secret()
    headers = signed_headers(secret, BODY)
    headers["webhook-signature"] = "garbage-without-comma"
    with pytest.raises(InvalidSignature):
        verify(BODY, headers, [secret])
    with pytest.raises(InvalidSignature):
        verify(b"\xff\xfe", signed_headers(secret, BODY), [secret])


@given(
    message_id=st.text(max_size=50),
    timestamp=st.text(max_size=30),
    signature=st.text(max_size=200),
    body=st.binary(max_size=200),
)
def test_arbitrary_headers_only_ever_fail_as_invalid_signature(
    message_id: str, timestamp: str, signature: str, body: bytes
) -> None:
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
    }
    with pytest.raises(InvalidSignature):
        verify(body, headers, [generate_secret()])


def test_a_malformed_token_does_not_hide_a_valid_signature() -> None:
    secret = generate_secret()
    headers = signed_headers(secret, BODY)
    valid = headers["webhook-signature"]
    for noise in ("garbage", "v1,abc", "v1,", ",", "v1a,xyz"):
        headers["webhook-signature"] = f"{noise} {valid}"
        verify(BODY, headers, [secret])


@pytest.mark.parametrize("timestamp", ["1763900000.5", "1e9", " 1763900000", "-1", "0x10"])
def test_timestamp_must_be_integer_seconds(timestamp: str) -> None:
    secret = generate_secret()
    headers = signed_headers(secret, BODY)
    headers["webhook-timestamp"] = timestamp
    with pytest.raises(InvalidSignature, match="integer"):
        verify(BODY, headers, [secret])
