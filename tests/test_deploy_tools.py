"""deploy/ through the tools an operator's host has, and the image replayed without a
container engine:

* the systemd units through `systemd-analyze verify` and `systemd-analyze security`
  (Debian's systemd), in a scratch root that holds the software where the units expect it,
  installed as deploy/README.md says;
* the sysusers and tmpfiles snippets applied to that root by `systemd-sysusers` and
  `systemd-tmpfiles`, and both units' commands run as the user they make, from their working
  directory, reading the environment file with the mode the snippet gives it;
* the Containerfile's build stage replayed (its COPY through .dockerignore, its RUN commands
  one by one, the changes to them named in ``replay_build``), then its runtime stage's
  entry point run with its environment, as its user, from its working directory: `migrate`,
  `serve` and `worker`, each probed with the image's own HEALTHCHECK command.

What this machine cannot check: the image build itself (no container engine; the base
image's Python, its pip upgrade and the dependencies it downloads are not those used here),
and the units' sandboxing taking effect (no systemd as PID 1 to run them under:
`ProtectSystem=strict` and friends are only analysed, by `security`). Tests that need
Debian's systemd or root skip, saying so, where they are missing.

Slow (about a minute): marked ``slow``."""

from __future__ import annotations

import json
import os
import pwd
import re
import selectors
import shlex
import shutil
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from corespond.config import PROJECT_ROOT
from tests.conftest import TEST_KEY, PgServer, _admin
from tests.test_deploy import containerfile, unit
from tests.test_operator_walkthrough import env_file_from_template, free_port, libpq

pytestmark = pytest.mark.slow

DEPLOY = PROJECT_ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
UNITS = ("corespond.service", "corespond-worker.service")
# `systemd-analyze security`'s overall exposure (0 safest, 10 least): the units score 3.2
# today ("OK"); a change that weakens their sandboxing fails here.
MOST_EXPOSURE = 3.5
IMAGE_UID = 10001


def reachable_by_others(path: Path) -> bool:
    """Whether a user other than this one may run ``path`` (every folder above it open)."""
    real = path.resolve()
    return bool(real.stat().st_mode & 0o005) and all(
        folder.stat().st_mode & 0o001 for folder in real.parents
    )


def interpreter() -> Path:
    """The Python the virtualenvs are made with: this one (3.11, as the image's), or, when
    other users cannot run it (a pyenv under /root), the system's of the same version."""
    here = Path(getattr(sys, "_base_executable", sys.executable))
    if reachable_by_others(here) and reachable_by_others(Path(sys.base_prefix)):
        return here
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/local/bin:/usr/bin")
    return Path(system) if system and reachable_by_others(Path(system)) else here


PYTHON = interpreter()
# Processes run as the image's or the units' user only where this runs as root and that user
# may run the interpreter; else as this user (said in the tests that do).
AS_ROOT = os.geteuid() == 0
SWITCH_USER = AS_ROOT and reachable_by_others(PYTHON)


def needs(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed here (Debian's systemd package has them)")


def dependencies_pth(venv: Path) -> None:
    """Let ``venv`` import this interpreter's packages (there is no index to install them
    from here); corespond itself is the wheel installed into it."""
    site = next((venv / "lib").glob("python3*/site-packages"))
    dependencies = next(p for p in map(Path, sys.path) if p.name == "site-packages")
    (site / "zz_dependencies.pth").write_text(f"{dependencies}\n")


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(  # noqa: S603 - tools of this host on files of this checkout
        command, capture_output=True, text=True, timeout=300, check=False, **kwargs
    )
    assert done.returncode == 0, f"{shlex.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A directory others may enter (the processes run as other users read from it)."""
    path = Path(tempfile.mkdtemp(prefix="corespond-deploy-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class SocketBridge(socketserver.ThreadingTCPServer):
    """127.0.0.1:port to a PostgreSQL Unix socket: the embedded server's lives in its data
    folder, which only its owner and root may enter, and the processes under test run as
    other users. (An external server, DATABASE_URL, is reached as it is.)"""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        super().__init__(("127.0.0.1", 0), _Pipe)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port


class _Pipe(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        assert isinstance(self.server, SocketBridge)
        with socket.socket(socket.AF_UNIX) as upstream:
            upstream.connect(self.server.socket_path)
            ends = {self.request: upstream, upstream: self.request}
            with selectors.DefaultSelector() as selector:
                for end in ends:
                    selector.register(end, selectors.EVENT_READ)
                while True:
                    for key, _ in selector.select():
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        ends[key.fileobj].sendall(data)  # type: ignore[index]


@pytest.fixture(scope="module")
def bridge(test_server: PgServer) -> Iterator[SocketBridge | None]:
    url = make_url(test_server.base_url)
    folder = url.query.get("host")
    if not url.host and isinstance(folder, str):
        with SocketBridge(f"{folder}/.s.PGSQL.{url.port or 5432}") as served:
            yield served
            served.shutdown()
    else:
        yield None


def reachable(url: str, bridge: SocketBridge | None) -> str:
    """``url`` as a process of another user reaches it (libpq form)."""
    if bridge is not None:
        url = (
            make_url(url)
            .set(host="127.0.0.1", port=bridge.port, query={})
            .render_as_string(hide_password=False)
        )
    return libpq(url)


@pytest.fixture
async def database(
    test_server: PgServer, bridge: SocketBridge | None
) -> AsyncIterator[tuple[str, str]]:
    """An empty database: (owner URL, service URL)."""
    name = f"corespond_deploy_{uuid.uuid4().hex[:8]}"
    await _admin(test_server.base_url, f'CREATE DATABASE "{name}"')
    yield (
        reachable(test_server.url(name), bridge),
        reachable(test_server.service_url(name), bridge),
    )
    await test_server.drop(name)


# -- the image, replayed -----------------------------------------------------------------------


@dataclass
class Stage:
    instructions: list[dict[str, Any]] = field(default_factory=list)

    def values(self, kind: str) -> list[str]:
        return [str(i["value"]) for i in self.instructions if i["instruction"] == kind]

    def env(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for value in self.values("ENV"):
            for pair in shlex.split(value):
                name, _, setting = pair.partition("=")
                found[name] = setting
        return found


def stages() -> list[Stage]:
    found: list[Stage] = []
    for instruction in containerfile().structure:
        if instruction["instruction"] == "FROM":
            found.append(Stage())
        if found:
            found[-1].instructions.append(instruction)
    return found


def ignored() -> list[str]:
    """The .dockerignore patterns that drop files inside what it lets through."""
    lines = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    return [line.removeprefix("**/") for line in lines if line.startswith("**/")]


@dataclass
class Image:
    root: Path  # stands for the image's /
    notes: list[str]

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def translate(self, text: str) -> str:
        """The image's absolute paths, as they are under ``root``."""
        return re.sub(r"(?<![\w.])/(opt|build|var)/", lambda m: f"{self.root}/{m.group(1)}/", text)


def replay_build(root: Path) -> Image:
    """The Containerfile's first stage, instruction by instruction, under ``root``: COPY
    through .dockerignore; each RUN command as written, except: `python` is ``PYTHON``
    (3.11, as the base image's); pip is not upgraded (no network); the wheel's dependencies
    are this interpreter's (`--no-deps`, and a .pth file) instead of downloaded."""
    image = Image(root, [])
    build = stages()[0]
    environment = {**os.environ, **build.env()}
    workdir = root
    for instruction in build.instructions:
        kind, value = instruction["instruction"], str(instruction["value"])
        if kind == "WORKDIR":
            workdir = image.path(value)
            workdir.mkdir(parents=True, exist_ok=True)
        elif kind == "COPY":
            *sources, target = value.split()
            for source in sources:
                origin = PROJECT_ROOT / source
                into = (workdir / target).resolve()
                if origin.is_dir():
                    shutil.copytree(origin, into, ignore=shutil.ignore_patterns(*ignored()))
                else:
                    into.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, into / origin.name)
        elif kind == "RUN":
            for command in (part.strip() for part in value.split("&&")):
                replay_command(image, command, workdir, environment)
    return image


def replay_command(image: Image, command: str, workdir: Path, environment: dict[str, str]) -> None:
    words = shlex.split(command)
    if words[:3] == ["python", "-m", "venv"]:
        venv = Path(image.translate(words[3]))
        run([str(PYTHON), "-m", "venv", str(venv)])
        dependencies_pth(venv)
        image.notes.append(f"{command}: with {PYTHON}; dependencies: this interpreter's")
        return
    if "install" in words and "--upgrade" in words and words[-1] == "pip":
        image.notes.append(f"{command}: skipped (no network)")
        return
    line = image.translate(command)
    if "install" in words and any(w.endswith(".whl") for w in words):
        line = line.replace(" install ", " install --no-deps ", 1)
        image.notes.append(f"{command}: --no-deps")
    run(["bash", "-c", f"set -euo pipefail; {line}"], cwd=workdir, env=environment)


@pytest.fixture(scope="module")
def image(scratch: Path) -> Image:
    return replay_build(scratch / "image")


def container_environment(image: Image, runtime: Stage, **settings: str) -> dict[str, str]:
    """The runtime stage's ENV (paths under the image's root), then what `docker run
    --env-file` / `-e` adds."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CORESPOND_") and k not in ("DATABASE_URL", "PYTHONPATH")
    }
    for name, value in runtime.env().items():
        value = value.replace("${PATH}", environment.get("PATH", "/usr/bin:/bin"))
        environment[name] = image.translate(value)
    environment["HOME"] = str(image.path(runtime.values("WORKDIR")[-1]))
    environment.update(settings)
    return environment


@dataclass
class Container:
    image: Image
    runtime: Stage
    environment: dict[str, str]

    @property
    def workdir(self) -> Path:
        return self.image.path(self.runtime.values("WORKDIR")[-1])

    def user(self) -> dict[str, int]:
        uid, _, gid = self.runtime.values("USER")[-1].partition(":")
        if not SWITCH_USER:
            return {}
        return {"user": int(uid), "group": int(gid or uid), "extra_groups": []}

    def argv(self, *command: str) -> list[str]:
        entrypoint = json.loads(self.runtime.values("ENTRYPOINT")[-1])
        default = json.loads(self.runtime.values("CMD")[-1])
        binary = shutil.which(entrypoint[0], path=self.environment["PATH"])
        assert binary is not None, f"{entrypoint[0]} is not on the image's PATH"
        return [binary, *entrypoint[1:], *(command or default)]

    def run(self, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run(
            self.argv(*command),
            cwd=self.workdir,
            env={**self.environment, **env},
            **self.user(),  # type: ignore[arg-type]
        )

    def start(self, log: Path, *command: str, **env: str) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(  # noqa: S603
                self.argv(*command),
                cwd=self.workdir,
                env={**self.environment, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                **self.user(),  # type: ignore[arg-type]
            )

    def healthy(self, **env: str) -> bool:
        """The image's HEALTHCHECK command, as Docker runs it inside the container."""
        (check,) = self.runtime.values("HEALTHCHECK")
        command = json.loads(check.split(" CMD ", 1)[1])
        python = shutil.which(command[0], path=self.environment["PATH"])
        assert python is not None
        done = subprocess.run(  # noqa: S603
            [python, *command[1:]],
            cwd=self.workdir,
            env={**self.environment, **env},
            capture_output=True,
            timeout=10,
            check=False,
            **self.user(),  # type: ignore[arg-type]
        )
        return done.returncode == 0


def wait_for(what: str, check: Any, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} within {seconds:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_the_image_builds_from_what_it_copies_and_its_wheel_installs_whole(image: Image) -> None:
    venv = image.path("/opt/corespond")
    (wheel,) = image.path("/build/dist").glob("corespond-*.whl")
    assert wheel.stat().st_size > 0
    assert (venv / "bin" / "corespond").is_file()
    checked = run([str(venv / "bin" / "pip"), "check"])
    assert "No broken requirements found" in checked.stdout
    # The runtime stage takes the build stage's virtualenv as it is, at the same path: the
    # scripts' shebangs point into it.
    runtime = stages()[-1]
    (copy,) = runtime.values("COPY")
    _, source, target = copy.split()
    assert source == target == "/opt/corespond"
    assert image.notes  # the replay's changes to the RUN commands, each named


def test_the_image_migrates_serves_and_works_as_its_user_and_passes_its_healthcheck(
    image: Image, database: tuple[str, str], tmp_path: Path
) -> None:
    owner_url, service_url = database
    runtime = stages()[-1]
    home = image.path(runtime.values("WORKDIR")[-1])
    # The runtime stage's useradd and `install -d`: its user's home, 0750.
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o750)
    if SWITCH_USER:
        os.chown(home, IMAGE_UID, IMAGE_UID)
    api_port, worker_port = free_port(), free_port()
    container = Container(
        image,
        runtime,
        container_environment(
            image,
            runtime,
            # `docker run --env-file corespond.env -e CORESPOND_PORT=…`
            DATABASE_URL=service_url,
            CORESPOND_MIGRATION_DATABASE_URL=owner_url,
            CORESPOND_SECRET_KEY=TEST_KEY.decode(),
            CORESPOND_PORT=str(api_port),
        ),
    )
    assert container.environment["CORESPOND_ENVIRONMENT"] == "production"

    assert "database at head" in container.run("migrate").stdout
    api = container.start(tmp_path / "serve.log")
    worker = container.start(
        tmp_path / "worker.log", "worker", CORESPOND_WORKER_HTTP_PORT=str(worker_port)
    )
    try:
        wait_for("the API's healthcheck to pass", container.healthy, tmp_path / "serve.log")
        wait_for(
            "the worker's healthcheck to pass",
            lambda: container.healthy(CORESPOND_WORKER_HTTP_PORT=str(worker_port)),
            tmp_path / "worker.log",
        )
        ready = httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
    finally:
        api_code, worker_code = stop(api), stop(worker)
    # STOPSIGNAL SIGTERM: both end by themselves, the worker cleanly.
    assert worker_code == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert api_code in (0, 128 + signal.SIGTERM), (tmp_path / "serve.log").read_text()[-3000:]


# -- the systemd units, on a host root ----------------------------------------------------------


@dataclass
class Host:
    root: Path

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def translate(self, text: str) -> str:
        return re.sub(r"(?<![\w.])/(opt|etc|var)/", lambda m: f"{self.root}/{m.group(1)}/", text)

    def user(self, name: str) -> pwd.struct_passwd:
        for line in self.path("/etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return pwd.struct_passwd(
                    (fields[0], fields[1], int(fields[2]), int(fields[3]), *fields[4:7])
                )
        raise LookupError(f"no user {name} in {self.path('/etc/passwd')}")

    def group(self, name: str) -> int:
        for line in self.path("/etc/group").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return int(fields[2])
        raise LookupError(f"no group {name}")


@pytest.fixture(scope="module")
def host(scratch: Path, image: Image) -> Host:
    """A host root with systemd's own units, deploy/README.md's steps 2 done in it: the
    snippets and units installed, the user made, corespond installed from the wheel."""
    needs("systemd-analyze", "systemd-sysusers", "systemd-tmpfiles")
    host = Host(scratch / "host")
    units = host.path("/usr/lib/systemd/system")
    shutil.copytree("/usr/lib/systemd/system", units, symlinks=True)
    host.path("/lib").symlink_to("usr/lib")
    for name, where in (
        ("corespond.sysusers", "/etc/sysusers.d/corespond.conf"),
        ("corespond.tmpfiles", "/etc/tmpfiles.d/corespond.conf"),
        *((name, f"/etc/systemd/system/{name}") for name in UNITS),
    ):
        target = host.path(where)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SYSTEMD / name, target)
        target.chmod(0o644)
    run(
        [
            "systemd-sysusers",
            f"--root={host.root}",
            str(host.path("/etc/sysusers.d/corespond.conf")),
        ]
    )
    venv = host.path("/opt/corespond/venv")
    run([str(PYTHON), "-m", "venv", str(venv)])
    dependencies_pth(venv)
    (wheel,) = image.path("/build/dist").glob("corespond-*.whl")
    run([str(venv / "bin" / "pip"), "install", "--no-deps", "--quiet", str(wheel)])
    return host


@pytest.mark.parametrize("name", UNITS)
def test_systemd_verifies_the_unit_without_a_word(host: Host, name: str) -> None:
    done = subprocess.run(  # noqa: S603
        [  # noqa: S607 - the host's systemd-analyze
            "systemd-analyze",
            "verify",
            "--man=no",
            f"--root={host.root}",
            f"/etc/systemd/system/{name}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys and bad values are warnings with exit status 0: any output is a finding.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize("name", UNITS)
def test_the_unit_is_sandboxed_as_systemd_scores_it(host: Host, name: str) -> None:
    done = run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            "--no-pager",
            f"--root={host.root}",
            f"/etc/systemd/system/{name}",
        ]
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout[-2000:]
    assert float(found.group(1)) <= MOST_EXPOSURE, done.stdout[-3000:]


def test_the_snippets_make_the_user_the_units_run_as(host: Host) -> None:
    user = host.user("corespond")
    assert user.pw_dir == "/var/lib/corespond"
    assert user.pw_shell == "/usr/sbin/nologin"
    assert 0 < user.pw_uid < 1000  # a system user
    for name in UNITS:
        settings = unit(host.path(f"/etc/systemd/system/{name}"))
        assert settings["Service.User"] == [user.pw_name]
        assert settings["Service.WorkingDirectory"] == [user.pw_dir]


@pytest.fixture
def configured(host: Host, database: tuple[str, str]) -> Iterator[Host]:
    """Step 3: the environment file from the template, then systemd-tmpfiles (as root: it
    gives files to the service's user)."""
    if not AS_ROOT:
        pytest.skip("systemd-tmpfiles gives files to the corespond user: needs root")
    if not SWITCH_USER:
        pytest.skip(f"the corespond user could not run {PYTHON}")
    owner_url, service_url = database
    env_file = host.path("/etc/corespond/corespond.env")
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file_from_template(env_file, service_url=service_url, owner_url=owner_url, port=free_port())
    env_file.chmod(0o644)  # as `cp` leaves it: tmpfiles must tighten it
    run(
        [
            "systemd-tmpfiles",
            f"--root={host.root}",
            "--create",
            str(host.path("/etc/tmpfiles.d/corespond.conf")),
        ]
    )
    yield host
    env_file.unlink()


def test_tmpfiles_gives_the_environment_file_to_root_and_the_services_group_only(
    configured: Host,
) -> None:
    host = configured
    user, group = host.user("corespond"), host.group("corespond")
    expected = {
        "/var/lib/corespond": (0o750, user.pw_uid, group),
        "/etc/corespond": (0o750, 0, group),
        "/etc/corespond/corespond.env": (0o640, 0, group),
    }
    for inside, (mode, uid, gid) in expected.items():
        status = host.path(inside).stat()
        assert (stat.S_IMODE(status.st_mode), status.st_uid, status.st_gid) == (mode, uid, gid)


def test_both_units_commands_run_as_their_user_from_their_directory(
    configured: Host, tmp_path: Path
) -> None:
    """What systemd would start, minus the sandbox: ExecStart as User/Group, in
    WorkingDirectory, with Environment=; the schema migrated first (step 4)."""
    host = configured
    migrate = host.path("/opt/corespond/venv/bin/corespond")
    env_file = host.path("/etc/corespond/corespond.env")
    run([str(migrate), "--env-file", str(env_file), "migrate"])
    port = re.search(r"^CORESPOND_PORT=(\d+)$", env_file.read_text(), re.MULTILINE)
    assert port
    processes = {}
    for name in UNITS:
        settings = unit(host.path(f"/etc/systemd/system/{name}"))
        account = host.user(settings["Service.User"][0])
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CORESPOND_")}
        environment.pop("DATABASE_URL", None)
        environment.pop("PYTHONPATH", None)
        # What systemd sets for a unit with User= (asyncpg looks under HOME for client
        # certificates; this user's home is not root's).
        environment.update(
            HOME=host.translate(account.pw_dir),
            USER=account.pw_name,
            LOGNAME=account.pw_name,
            SHELL=account.pw_shell,
        )
        for assignment in settings.get("Service.Environment", []):
            name_, _, value = assignment.partition("=")
            environment[name_] = host.translate(value)
        with (tmp_path / f"{name}.log").open("wb") as log:
            processes[name] = subprocess.Popen(  # noqa: S603
                shlex.split(host.translate(settings["Service.ExecStart"][0])),
                cwd=host.translate(settings["Service.WorkingDirectory"][0]),
                env=environment,
                user=account.pw_uid,
                group=host.group(settings["Service.Group"][0]),
                extra_groups=[],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    base = f"http://127.0.0.1:{port.group(1)}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def worker_started() -> bool:
        return "worker_started" in (tmp_path / "corespond-worker.service.log").read_text()

    try:
        wait_for("corespond.service to be ready", ready, tmp_path / "corespond.service.log")
        wait_for(
            "corespond-worker.service to start its jobs",
            worker_started,
            tmp_path / "corespond-worker.service.log",
        )
    finally:
        codes = {name: stop(process) for name, process in processes.items()}
    assert codes["corespond-worker.service"] == 0
    assert codes["corespond.service"] in (0, 128 + signal.SIGTERM)
