"""The relay connects only to an address it checked: one lookup of the callback's name per
attempt, an internal answer refused in production, the name kept for Host and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.dispatch.relay import Relay
from corespond.sources.addresses import IPAddress, is_internal, resolve
from tests.conftest import Source, make_source
from tests.test_dispatch import FAST, attempts, messages, point_at, stored

NAME = "cad.example.org"
CALLBACK = f"https://{NAME}:8443/cad/callback"
PUBLIC = "93.184.215.14"
OTHER_PUBLIC = "2606:4700:4700::1111"


@dataclass
class Lookups:
    """A resolver whose n-th lookup gets the n-th answer (the last one repeats)."""

    answers: list[list[str] | OSError]
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append((host, port))
        answer = self.answers[min(len(self.asked), len(self.answers)) - 1]
        if isinstance(answer, OSError):
            raise answer
        return [ipaddress.ip_address(a) for a in answer]


@dataclass
class Network:
    """A transport that answers 204 and remembers every request that reached it; requests
    to a host in ``refusing`` fail to connect, as to a server that is down."""

    refusing: set[str] = field(default_factory=set)
    tried: list[str] = field(default_factory=list)
    sent: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.tried.append(request.url.host)
        if request.url.host in self.refusing:
            raise httpx.ConnectError("connection refused", request=request)
        self.sent.append(request)
        return httpx.Response(204, stream=httpx.ByteStream(b""))  # streamed, as from a socket


@pytest.fixture
async def cad(committed_db: Database, box: SecretBox) -> Source:
    source = await make_source(committed_db, box)
    await point_at(committed_db, source, CALLBACK)
    return source


@pytest.fixture
def network() -> Network:
    return Network()


@pytest.fixture
async def http(network: Network) -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: a proxy in the environment running the tests must not route these.
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(network), trust_env=False, timeout=2
    ) as client:
        yield client


def production_relay(
    db: Database, box: SecretBox, http: httpx.AsyncClient, lookups: Lookups
) -> Relay:
    return Relay(db, http, box, FAST, environment="production", resolver=lookups)


# --- the classifier ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.5",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",  # noqa: S104 - an address to classify, nothing binds to it
        "100.64.0.1",  # carrier-grade NAT
        "100.127.255.254",
        "224.0.0.1",  # multicast, global by ipaddress.is_global in 3.11
        "239.255.255.250",
        "255.255.255.255",
        "240.0.0.1",
        "192.0.2.1",  # documentation
        "198.18.0.1",  # benchmarking
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "ff0e::1",  # global-scope multicast: global by ipaddress.is_global in 3.11
        "fec0::1",  # site-local
        "3fff::1",  # documentation (RFC 9637)
        "2001:db8::1",
        "2001::1",  # Teredo
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.5",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a00:5::",  # 6to4 of 10.0.0.5
    ],
)
def test_internal_addresses(address: str) -> None:
    assert is_internal(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        PUBLIC,
        "100.63.255.255",  # just below carrier-grade NAT
        "100.128.0.0",  # just above it
        "172.32.0.1",  # just above 172.16/12
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8, what a DNS64 resolver answers
        "2002:808:808::",  # 6to4 of 8.8.8.8
    ],
)
def test_public_addresses(address: str) -> None:
    assert not is_internal(ipaddress.ip_address(address))


async def test_resolve_lists_each_address_once_in_the_resolvers_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def getaddrinfo(host: str, port: int, **_: object) -> list[tuple[Any, ...]]:
        assert (host, port) == (NAME, 443)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (OTHER_PUBLIC, port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (OTHER_PUBLIC, port, 0, 0)),
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    assert await resolve(NAME, 443) == [
        ipaddress.ip_address(OTHER_PUBLIC),
        ipaddress.ip_address(PUBLIC),
    ]


# --- the relay in production ---------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        ["10.0.0.5"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["::ffff:127.0.0.1"],
        [PUBLIC, "10.0.0.5"],  # one internal answer among public ones is enough
    ],
)
async def test_a_name_resolving_to_an_internal_address_is_never_connected_to(
    committed_db: Database,
    cad: Source,
    box: SecretBox,
    http: httpx.AsyncClient,
    network: Network,
    answer: list[str],
) -> None:
    [message] = await messages(committed_db, cad)
    lookups = Lookups([answer])
    assert await production_relay(committed_db, box, http, lookups).deliver_one()

    assert network.tried == []
    internal = next(a for a in map(ipaddress.ip_address, answer) if is_internal(a))
    [attempt] = await attempts(committed_db, message.id)
    assert attempt.outcome == "retry"
    assert attempt.url == CALLBACK
    assert attempt.status_code is None
    assert attempt.error == f"callback host '{NAME}' resolves to an internal address {internal}"
    kept = await stored(committed_db, message.id)
    assert (kept.state, kept.attempts) == ("pending", 1)
    assert kept.last_error == attempt.error
    assert lookups.asked == [(NAME, 8443)]


async def test_a_name_that_does_not_resolve_is_retried(
    committed_db: Database,
    cad: Source,
    box: SecretBox,
    http: httpx.AsyncClient,
    network: Network,
) -> None:
    [message] = await messages(committed_db, cad)
    lookups = Lookups([socket.gaierror(socket.EAI_NONAME, "Name or service not known")])
    await production_relay(committed_db, box, http, lookups).deliver_one()

    assert network.tried == []
    [attempt] = await attempts(committed_db, message.id)
    assert attempt.outcome == "retry"
    assert attempt.error is not None
    assert attempt.error.startswith(f"callback host '{NAME}' does not resolve")
    kept = await stored(committed_db, message.id)
    assert (kept.state, kept.attempts) == ("pending", 1)


async def test_a_public_answer_is_connected_to_with_the_name_kept_for_host_and_tls(
    committed_db: Database,
    cad: Source,
    box: SecretBox,
    http: httpx.AsyncClient,
    network: Network,
) -> None:
    [message] = await messages(committed_db, cad)
    lookups = Lookups([[PUBLIC]])
    await production_relay(committed_db, box, http, lookups).deliver_one()

    [request] = network.sent
    assert str(request.url) == f"https://{PUBLIC}:8443/cad/callback"
    assert request.headers["host"] == f"{NAME}:8443"
    assert request.extensions["sni_hostname"] == NAME
    assert lookups.asked == [(NAME, 8443)]
    delivered = await stored(committed_db, message.id)
    assert (delivered.state, delivered.last_status_code) == ("delivered", 204)
    [attempt] = await attempts(committed_db, message.id)
    assert attempt.url == CALLBACK  # the log shows the callback, not the address


async def test_a_rebinding_name_cannot_send_a_delivery_to_its_second_answer(
    committed_db: Database,
    cad: Source,
    box: SecretBox,
    http: httpx.AsyncClient,
    network: Network,
) -> None:
    first, second = await messages(committed_db, cad, calls=2)
    lookups = Lookups([[PUBLIC], ["127.0.0.1"]])
    relay = production_relay(committed_db, box, http, lookups)
    assert await relay.deliver_one()
    assert await relay.deliver_one()

    assert len(lookups.asked) == 2  # one lookup for each send, none behind the check's back
    assert network.tried == [PUBLIC]
    states = {m.id: (await stored(committed_db, m.id)).state for m in (first, second)}
    assert sorted(states.values()) == ["delivered", "pending"]
    refused = next(m for m, state in states.items() if state == "pending")
    [attempt] = await attempts(committed_db, refused)
    assert attempt.error == f"callback host '{NAME}' resolves to an internal address 127.0.0.1"


async def test_the_next_checked_address_is_tried_when_one_is_down(
    committed_db: Database,
    cad: Source,
    box: SecretBox,
    http: httpx.AsyncClient,
    network: Network,
) -> None:
    [message] = await messages(committed_db, cad)
    network.refusing.add(OTHER_PUBLIC)
    lookups = Lookups([[OTHER_PUBLIC, PUBLIC]])
    await production_relay(committed_db, box, http, lookups).deliver_one()

    assert network.tried == [OTHER_PUBLIC, PUBLIC]
    assert lookups.asked == [(NAME, 8443)]
    assert (await stored(committed_db, message.id)).state == "delivered"


# --- through an egress proxy ---------------------------------------------------------------


async def test_through_a_proxy_the_name_is_sent_and_still_checked(
    committed_db: Database, cad: Source, box: SecretBox, network: Network
) -> None:
    direct = Network()
    # The proxy resolves the name and connects: an address in the URL would make its
    # tunnel check TLS against the address, not the name.
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(direct),
        mounts={"all://": httpx.MockTransport(network)},
        trust_env=False,
    ) as proxied:
        refused, sent = await messages(committed_db, cad, calls=2)
        relay = production_relay(committed_db, box, proxied, Lookups([["10.0.0.5"], [PUBLIC]]))
        assert await relay.deliver_one()
        assert await relay.deliver_one()

    assert direct.tried == []
    [request] = network.sent
    assert request.url.host == NAME
    states = sorted([(await stored(committed_db, m.id)).state for m in (refused, sent)])
    assert states == ["delivered", "pending"]


async def test_a_name_exempt_from_the_proxy_whose_addresses_are_not_is_refused(
    committed_db: Database, cad: Source, box: SecretBox, network: Network
) -> None:
    direct = Network()
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(direct),
        mounts={"all://": httpx.MockTransport(network), f"all://{NAME}": None},
        trust_env=False,
    ) as client:
        [message] = await messages(committed_db, cad)
        await production_relay(committed_db, box, client, Lookups([[PUBLIC]])).deliver_one()

    assert (direct.tried, network.tried) == ([], [])
    [attempt] = await attempts(committed_db, message.id)
    assert attempt.outcome == "retry"
    assert "NO_PROXY" in (attempt.error or "")


# --- a real TLS connection -----------------------------------------------------------------


@dataclass
class TlsReceiver:
    """An HTTPS server on 127.0.0.1 holding a certificate for ``NAME`` only (no IP address
    in it): a client verifying TLS against an address instead of the name fails."""

    server_names: list[str | None] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        fields = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:])
            if name
        }
        await reader.readexactly(int(fields.get("content-length", "0")))
        self.hosts.append(fields.get("host", ""))
        writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def certificates(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A private CA and a server certificate for ``NAME`` it signed: the server's and the
    client's TLS contexts."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain, private = directory / "server.pem", directory / "server.key"
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(chain, private)
    client = ssl.create_default_context(
        cadata=ca.public_bytes(serialization.Encoding.PEM).decode("ascii")
    )
    return server, client


async def test_tls_verifies_the_name_on_the_connection_to_the_checked_address(
    committed_db: Database,
    cad: Source,
    box: SecretBox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_tls, client_tls = certificates(tmp_path)
    receiver = TlsReceiver()
    server_tls.sni_callback = lambda _, name, __: receiver.server_names.append(name)
    server = await asyncio.start_server(receiver.answer, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    await point_at(committed_db, cad, f"https://{NAME}:{port}/cad/callback")

    # Any lookup of the name besides the relay's own would be answered with another address,
    # where nothing listens: the delivery only arrives if the checked answer is the one used.
    loop = asyncio.get_running_loop()
    system_getaddrinfo = loop.getaddrinfo
    looked_up: list[str] = []

    async def rebinding(host: str | bytes, port: int, **kwargs: Any) -> Any:
        name = host.decode("ascii") if isinstance(host, bytes) else host  # anyio sends bytes
        looked_up.append(name)
        if name == NAME:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port))]
        return await system_getaddrinfo(host, port, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    lookups = Lookups([["127.0.0.1"]])
    [message] = await messages(committed_db, cad)
    try:
        async with httpx.AsyncClient(verify=client_tls, trust_env=False, timeout=5) as http:
            # "test" allows loopback callbacks, as development does: the receiver is local.
            relay = Relay(committed_db, http, box, FAST, environment="test", resolver=lookups)
            assert await relay.deliver_one()
    finally:
        server.close()
        await server.wait_closed()

    delivered = await stored(committed_db, message.id)
    assert (delivered.state, delivered.last_status_code, delivered.last_error) == (
        "delivered",
        204,
        None,
    )
    assert receiver.server_names == [NAME]
    assert receiver.hosts == [f"{NAME}:{port}"]
    assert lookups.asked == [(NAME, port)]
    assert looked_up == []  # the connection needed no lookup: its URL names the address
