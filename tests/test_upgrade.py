"""A zero-downtime upgrade, as docs/operations.md tells it: the previous release is running
(its `serve` and `worker`, on its schema, with its data) when this release's migrations are
applied; it must go on working (ingest, triage, offer, accept, deliver) on the new schema,
and beside this release's API while instances are replaced one by one.

"The previous release" is the code of the commit before the one that added the newest
migration (so the newest migration is always tried against the code that preceded it),
taken from git history into a temporary directory and run in processes of its own. Without
git history (a source tarball) or with a history too shallow to hold that commit, the test
is skipped and says why.

Slow (under a minute): the one test that runs both releases is marked ``slow``."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory

from corespond.config import PROJECT_ROOT
from corespond.migrate import alembic_config, head_revisions, upgrade_to_head
from tests.conftest import TEST_KEY, PgServer, _admin
from tests.helpers import cad_event, encode, minutes_ago, signed_headers
from tests.receiver import Receiver
from tests.test_operator_walkthrough import free_port, libpq

MIGRATIONS = PROJECT_ROOT / "migrations"
WAIT_SECONDS = 45


def git(root: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - git, with fixed arguments
        ["git", "-C", str(root), *args],  # noqa: S607
        env={**os.environ, "GIT_CEILING_DIRECTORIES": str(root.parent)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise LookupError(done.stderr.strip() or f"git {' '.join(args)} failed")
    return done.stdout


def previous_release(root: Path = PROJECT_ROOT) -> str:
    """The commit before the one that added the newest migration (HEAD when that migration
    is not committed yet); skips the test when git history cannot say."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the previous release is read from git history")
    try:
        git(root, "rev-parse", "--git-dir")
    except LookupError:
        pytest.skip("no git history here (a source tarball?): no previous release to run")
    (head,) = head_revisions(root / "migrations")
    script = ScriptDirectory.from_config(alembic_config(root / "migrations", ""))
    newest = Path(script.get_revision(head).path).relative_to(root)
    added = git(root, "log", "-n1", "--diff-filter=A", "--format=%H", "--", str(newest)).strip()
    if not added:
        return git(root, "rev-parse", "HEAD").strip()
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{added}^").strip()
    except LookupError:
        pytest.skip(f"git history too shallow: the commit before {added[:12]} is not in it")


def extract(commit: str, into: Path) -> Path:
    """The previous release's src/ and migrations/ (a checkout of its own)."""
    archive = subprocess.run(  # noqa: S603
        ["git", "-C", str(PROJECT_ROOT), "archive", "--format=tar", commit, "src", "migrations"],  # noqa: S607
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


class Release:
    """One release's code, run as `python -m corespond …` from a directory of its own."""

    def __init__(self, src: Path, home: Path, environment: dict[str, str]) -> None:
        self.src = src
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.environment = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith("CORESPOND_") and k not in ("DATABASE_URL", "PYTHONPATH")
            },
            **environment,
            "PYTHONPATH": str(src),
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def imports_from(self) -> Path:
        """Where ``import corespond`` finds the package in this release's processes."""
        done = subprocess.run(
            [sys.executable, "-c", "import corespond; print(corespond.__file__)"],
            cwd=self.home,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return Path(done.stdout.strip())

    def run(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "corespond", *args],
            cwd=self.home,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"corespond {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with (self.home / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "corespond", *args],
                cwd=self.home,
                env={**self.environment, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text()[-4000:]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
async def database(test_server: PgServer) -> AsyncIterator[tuple[str, str]]:
    """An empty database: (owner URL, service URL)."""
    name = f"corespond_upgrade_{uuid.uuid4().hex[:8]}"
    await _admin(test_server.base_url, f'CREATE DATABASE "{name}"')
    yield test_server.url(name), test_server.service_url(name)
    await test_server.drop(name)


@contextmanager
def running(*releases: Release) -> Iterator[None]:
    try:
        yield
    finally:
        for release in releases:
            release.stop()


async def until(what: str, check: Any, logs: str = "") -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {WAIT_SECONDS} s\n{logs}")


async def ready(client: httpx.AsyncClient, base: str) -> bool:
    try:
        return (await client.get(f"{base}/readyz", timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


async def answering(client: httpx.AsyncClient, base: str) -> bool:
    try:
        return (await client.get(f"{base}/healthz", timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A CAD's callback; its secret is set once the source exists."""
    started = await Receiver("whsec_" + "A" * 32).start()
    yield started
    await started.stop()


@pytest.mark.slow
async def test_the_previous_release_keeps_working_on_the_new_schema(
    database: tuple[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    owner_url, service_url = database
    commit = previous_release()
    old_tree = extract(commit, tmp_path / "previous")
    settings = {
        "CORESPOND_ENVIRONMENT": "test",
        "DATABASE_URL": libpq(service_url),
        "CORESPOND_MIGRATION_DATABASE_URL": libpq(owner_url),
        "CORESPOND_SECRET_KEY": TEST_KEY.decode(),
        "CORESPOND_LOG_JSON": "true",
        "CORESPOND_WORKER_SWEEP_SECONDS": "1",
        "CORESPOND_RELAY_SWEEP_SECONDS": "1",
    }
    old_port, new_port = free_port(), free_port()
    old = Release(
        old_tree / "src",
        tmp_path / "previous-home",
        {**settings, "CORESPOND_DATA_DIR": str(tmp_path / "previous-var")},
    )
    new = Release(
        PROJECT_ROOT / "src",
        tmp_path / "new-home",
        {**settings, "CORESPOND_DATA_DIR": str(tmp_path / "new-var")},
    )
    assert old.imports_from().is_relative_to(old.src), f"not the code of {commit}"
    assert new.imports_from().is_relative_to(PROJECT_ROOT / "src")

    # The previous release, installed and configured as an operator would (its own CLI).
    assert "database at head" in old.run("migrate")
    admin = re.search(r"admin key: (csk_\S+)", old.run("init", "--name", "county IT"))
    assert admin, "init printed no admin key"
    old.run("agencies", "add", "CHARLESTON PD", "--county", "Kanawha")
    old.run("roster", "add-provider", "wvsl", "--name", "WV Sober Living", "--county", "Kanawha")
    secret = re.search(
        r"whsec_\S+",
        old.run(
            "sources", "add", "kanawha-911", "--name", "Kanawha 911", "--agency", "CHARLESTON PD"
        ),
    )
    assert secret
    receiver.secret = secret.group()
    old.run("sources", "set-callback", "kanawha-911", receiver.url)

    headers = {"Authorization": f"Bearer {admin.group(1)}"}
    old_base, new_base = f"http://127.0.0.1:{old_port}", f"http://127.0.0.1:{new_port}"
    with running(old, new):
        old.start("serve", "serve", CORESPOND_PORT=str(old_port), CORESPOND_WORKER_ENABLED="false")
        old.start("worker", "worker")
        async with httpx.AsyncClient(timeout=10) as client:
            await until(
                "the previous release's API", lambda: ready(client, old_base), old.log("serve")
            )
            peer_key = await a_peer_on_shift(client, old_base, headers)

            # Its schema, its data: an event before the upgrade.
            await post_event(client, old_base, secret.group(), 1)

            # This release's migrations, while the previous release runs.
            await asyncio.to_thread(upgrade_to_head, MIGRATIONS, owner_url)

            # The previous release's readiness on the new schema: ready if it knows a schema
            # ahead of it is a newer release's (releases before that answered 503 until
            # replaced; docs/operations.md says so).
            readiness = await client.get(f"{old_base}/readyz")
            knows_newer = '"ahead"' in (old.src / "corespond" / "ops" / "router.py").read_text()
            assert readiness.status_code == (200 if knows_newer else 503), readiness.text

            # Its main paths on the new schema: ingest, triage, offer, accept, deliver.
            await post_event(client, old_base, secret.group(), 2)
            call = await until(
                "the worker to triage the call",
                lambda: triaged(client, old_base, headers, "26-000002"),
                old.log("worker"),
            )
            assert call["decision"] == "eligible"
            offered = await client.post(
                f"{old_base}/v1/calls/{call['id']}/peer-requests", headers=headers
            )
            assert offered.status_code == 201, offered.text
            assignment = offered.json()
            assert assignment["status"] == "offered"
            accepted = await client.post(
                f"{old_base}/v1/assignments/{assignment['id']}/accept",
                headers={"Authorization": f"Bearer {peer_key}"},
            )
            assert accepted.status_code == 200, accepted.text
            assert accepted.json()["status"] == "accepted"

            # This release's API beside it (a rolling update half done): it reads what the
            # previous one wrote, and what it writes the previous release's worker delivers.
            new.start(
                "serve", "serve", CORESPOND_PORT=str(new_port), CORESPOND_WORKER_ENABLED="false"
            )
            await until("this release's API", lambda: ready(client, new_base), new.log("serve"))
            seen = await client.get(
                f"{new_base}/v1/assignments/{assignment['id']}", headers=headers
            )
            assert seen.status_code == 200, seen.text
            assert seen.json()["status"] == "accepted"
            secured = await client.post(
                f"{new_base}/v1/assignments/{assignment['id']}/scene-secure", headers=headers
            )
            assert secured.status_code == 200, secured.text

            expected = ["assignment.offered", "assignment.accepted", "assignment.scene_secure"]

            async def delivered() -> list[str] | None:
                types = [r.event["type"] for r in receiver.delivered()]
                return types if all(t in types for t in expected) else None

            types = await until("the deliveries to the CAD", delivered, old.log("worker"))
    assert [t for t in types if t in expected] == expected  # in order, per call
    assert receiver.delivered() == receiver.received  # every one signed and verified
    assert old.processes[1].returncode == 0, old.log("worker")


async def a_peer_on_shift(client: httpx.AsyncClient, base: str, headers: dict[str, str]) -> str:
    """A peer with every credential, available, on shift in Kanawha now (the v1 API); their
    key."""
    peer = await client.post(
        f"{base}/v1/peers",
        headers=headers,
        json={"provider_id": "wvsl", "display_name": "Jordan Miller", "phone": "+13045550100"},
    )
    assert peer.status_code == 201, peer.text
    peer_id = peer.json()["id"]
    for kind in ("prss_certification", "cjis_background", "nda"):
        held = await client.put(
            f"{base}/v1/peers/{peer_id}/credentials/{kind}", headers=headers, json={}
        )
        assert held.status_code in (200, 201), held.text
    now = datetime.now(UTC)
    shift = await client.post(
        f"{base}/v1/shifts",
        headers=headers,
        json={
            "peer_id": peer_id,
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=8)).isoformat(),
            "counties": ["Kanawha"],
        },
    )
    assert shift.status_code == 201, shift.text
    key = await client.post(
        f"{base}/v1/keys",
        headers=headers,
        json={"role": "peer", "name": "Jordan Miller", "scope": f"peer:{peer_id}"},
    )
    assert key.status_code == 201, key.text
    token: str = key.json()["key"]
    status = await client.post(
        f"{base}/v1/peers/{peer_id}/status",
        headers={"Authorization": f"Bearer {token}"},
        json={"status": "available"},
    )
    assert status.status_code == 200, status.text
    return token


async def post_event(client: httpx.AsyncClient, base: str, secret: str, number: int) -> None:
    body = encode(
        cad_event(
            event_id=f"kanawha-911:{number}",
            occurred_at=minutes_ago(1).isoformat(),
            incident_number=f"26-00000{number}",
            agency="CHARLESTON PD",
        )
    )
    answer = await client.post(
        f"{base}/v1/cad/kanawha-911/events", content=body, headers=signed_headers(secret, body)
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "accepted"


async def triaged(
    client: httpx.AsyncClient, base: str, headers: dict[str, str], incident: str
) -> dict[str, Any] | None:
    calls = (await client.get(f"{base}/v1/calls", headers=headers)).json()["items"]
    for call in calls:
        if call["incident_number"] == incident and call["decision"] is not None:
            found: dict[str, Any] = call
            return found
    return None


def test_without_git_history_the_upgrade_test_skips_saying_why(tmp_path: Path) -> None:
    """A source tarball: the project's files, no .git."""
    shutil.copytree(MIGRATIONS, tmp_path / "migrations")
    with pytest.raises(pytest.skip.Exception, match="no git history here"):
        previous_release(tmp_path)
