"""The README's walk through the demo, run as written against a fresh
``corespond serve --migrate --demo`` (what ``make run`` starts), so that what it says a
newcomer will see is what they see.

The README marks the shell blocks it means literally (the same rules are noted there):

* ``<!-- checked -->`` before a ```` ```sh```` block: its commands run in order in one bash
  session, as pasted into a terminal (a line ending in ``\\`` goes on). The ``#`` lines
  right after a command are all it prints: ``…`` stands for any text, a line of only ``…``
  for any number of lines, a note at the end of a line (two spaces, then in parentheses)
  is not output, and runs of spaces count as one. A command with no such lines must only
  succeed. ``export NAME=...`` takes the value the demo printed for ``NAME``.
* ``<!-- checked: background -->``: the block's one command runs in a terminal of its
  own. Its ``#`` lines are printed in this order, others between; the walk-through goes on
  once the first is printed, and the rest must come before it is stopped (Ctrl+C).
* ``<!-- checked: after stopping the background -->``: the background commands are
  stopped first.

Every shell block of the walk-through is checked. Only the machine differs from a
reader's: the server and the sink listen on free ports instead of 8000 and 9100,
``.venv/bin/`` is this interpreter's, and ``cad send`` is given the server's URL (its
default is port 8000).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from corespond.config import PROJECT_ROOT
from corespond.db import Database
from tests.conftest import TEST_KEY, PgServer

README = PROJECT_ROOT / "README.md"
SECTION = ("## A walk through the demo", "## Geography")
BIN = Path(sys.executable).parent
BASH = shutil.which("bash") or "/bin/bash"
MARKER = re.compile(r"^<!-- checked(?::\s*(?P<mode>[a-z ]+?))?\s*-->$")
MODES = ("", "background", "after stopping the background")
NOTE = re.compile(r"\s{2,}\([^()]*\)\s*$")
ELISION = "…"
PASTE = re.compile(r"^export (?P<name>\w+)=\S*\.\.\.")
COMMAND_SECONDS = 30.0
BACKGROUND_SECONDS = 15.0


@dataclass
class Command:
    """One command of a checked block, with the lines the README says it prints."""

    text: str
    line: int
    mode: str
    expected: list[str] = field(default_factory=list)


def walkthrough_commands(readme: str) -> tuple[list[Command], list[int]]:
    """The commands of the walk-through's checked blocks, in order, and the README line
    numbers of its shell blocks that are not marked."""
    lines = readme.splitlines()
    start = lines.index(SECTION[0])
    end = lines.index(SECTION[1], start)
    commands: list[Command] = []
    unmarked: list[int] = []
    mode: str | None = None
    index = start
    while index < end:
        text = lines[index].strip()
        marker = MARKER.match(text)
        if marker:
            mode = marker.group("mode") or ""
            assert mode in MODES, f"README.md:{index + 1}: unknown marker {text}"
        elif text == "```sh":
            if mode is None:
                unmarked.append(index + 1)
            index = _read_block(lines, index + 1, mode, commands if mode is not None else [])
            mode = None
        elif text and mode is not None:
            pytest.fail(f"README.md:{index + 1}: a checked marker must come right before ```sh")
        index += 1
    return commands, unmarked


def _read_block(lines: list[str], index: int, mode: str | None, into: list[Command]) -> int:
    """Commands of the block starting at ``index`` (continued lines joined, ``#`` lines
    their output); the index of its closing fence."""
    while lines[index].strip() != "```":
        text = lines[index]
        if text.lstrip().startswith("#"):
            assert into or mode is None, f"README.md:{index + 1}: output before any command"
            if into:
                into[-1].expected.append(text.lstrip()[1:].removeprefix(" "))
        elif text.strip():
            first = index
            while text.endswith("\\"):
                index += 1
                text += "\n" + lines[index]
            into.append(Command(text, first + 1, mode or ""))
        index += 1
    return index


def _pattern(expected: str) -> re.Pattern[str] | None:
    """A line of output as written in the README; None for a line of any number of lines."""
    text = " ".join(NOTE.sub("", expected).split())
    if text == ELISION:
        return None
    return re.compile(".*".join(re.escape(part) for part in text.split(ELISION)))


def _normal(line: str) -> str:
    return " ".join(line.split())


def prints_exactly(expected: list[str], output: list[str]) -> bool:
    """The output is the expected lines (an elision line matching any number of lines)."""
    patterns = [_pattern(e) for e in expected]
    lines = [_normal(line) for line in output]
    # reach[j]: the first i patterns can match exactly the first j lines.
    reach = [True] + [False] * len(lines)
    for pattern in patterns:
        following = [False] * (len(lines) + 1)
        for j in range(len(lines) + 1):
            if pattern is None:
                following[j] = reach[j] or (j > 0 and following[j - 1])
            else:
                following[j] = j > 0 and reach[j - 1] and bool(pattern.fullmatch(lines[j - 1]))
        reach = following
    return reach[-1]


def prints_in_order(expected: list[str], output: list[str]) -> bool:
    """The output has the expected lines in this order, other lines between them."""
    patterns = (p for p in map(_pattern, expected) if p is not None)
    wanted = next(patterns, None)
    for line in output:
        if wanted is not None and wanted.fullmatch(_normal(line)):
            wanted = next(patterns, None)
    return wanted is None


def test_the_matching_rules_read_the_readme_as_a_reader_would() -> None:
    assert prints_exactly(
        ["DEMO-0001 cleared Jordan Miller  (a note)"], ["DEMO-0001 cleared Jordan Miller "]
    )
    assert not prints_exactly(["DEMO-0001 cleared"], ["DEMO-0001 cleared", "DEMO-0002 offered"])
    assert prints_exactly(["{", '"id": "…",', "…"], ["{", '    "id": "e5",', '    "a": 1', "}"])
    assert prints_exactly(["…"], [])
    assert not prints_exactly(['{"status":401,…}'], ['{"status":404}'])
    assert prints_in_order(["a …", "c"], ["x", "a 1", "b", "c"])
    assert not prints_in_order(["a …", "c"], ["c", "a 1"])


# --- running it -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Machine:
    """Where this run's server and sink are, in place of the README's 8000 and 9100."""

    base_url: str
    sink_port: int

    def localise(self, text: str) -> str:
        text = text.replace("http://127.0.0.1:8000", self.base_url)
        return re.sub(r"\b9100\b", str(self.sink_port), text)

    def command(self, text: str) -> str:
        text = self.localise(text).replace(".venv/bin/", f"{BIN}/")
        if "corespond cad send" in text and "--url" not in text:
            text = text.replace("corespond cad send", f"corespond cad send --url {self.base_url}")
        return text


class Shell:
    """One bash session, like the reader's second terminal."""

    END = "__walkthrough_command_done__"

    def __init__(self, env: dict[str, str]) -> None:
        self._process = subprocess.Popen(  # noqa: S603 - the reader's shell
            [BASH, "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=PROJECT_ROOT,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line.rstrip("\n"))

    def run(self, command: str) -> tuple[int, list[str]]:
        """Run one command (its stdin empty, its stderr shown as a terminal would)."""
        assert self._process.stdin is not None
        self._process.stdin.write(
            f"{{\n{command}\n}} </dev/null 2>&1\n__rc=$?; printf '\\n{self.END} %s\\n' \"$__rc\"\n"
        )
        self._process.stdin.flush()
        output: list[str] = []
        deadline = time.monotonic() + COMMAND_SECONDS
        while True:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(
                    f"no end after {COMMAND_SECONDS} s of:\n{command}\n" + "\n".join(output)
                )
            if line.startswith(self.END):
                while output and not output[-1].strip():
                    output.pop()
                return int(line.split()[1]), output
            output.append(line)

    def environment(self) -> dict[str, str]:
        """The variables this session exports (what a command started from it would get)."""
        code, output = self.run("python3 -c 'import json,os; print(json.dumps(dict(os.environ)))'")
        assert code == 0, output
        environment: dict[str, str] = json.loads(output[-1])
        return environment

    def close(self) -> None:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.close()
        self._process.wait(timeout=10)
        self._pump_thread.join(timeout=10)
        self._process.stdout.close()


@dataclass
class Background:
    """A command running in a terminal of its own."""

    command: Command
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def wait_for(self, expected: list[str]) -> None:
        """Until it has printed these lines (in this order, others between)."""
        deadline = time.monotonic() + BACKGROUND_SECONDS
        while not prints_in_order(expected, self.output()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(
                    f"README.md:{self.command.line}: {self.command.text}\n"
                    f"did not print, in this order:\n  "
                    + "\n  ".join(expected)
                    + "\nbut:\n  "
                    + "\n  ".join(self.output())
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Ctrl+C, as the reader would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def _start_background(shell: Shell, command: Command, machine: Machine, log: Path) -> Background:
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - a command of our own README
            [BASH, "--noprofile", "--norc", "-c", machine.command(command.text)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=shell.environment(),
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )
    running = Background(
        Command(
            command.text,
            command.line,
            command.mode,
            [machine.localise(e) for e in command.expected],
        ),
        process,
        log,
    )
    running.wait_for(running.command.expected[:1])  # ready, as the reader sees it
    return running


@dataclass(frozen=True)
class Served:
    machine: Machine
    printed: dict[str, str]  # NAME -> value of each ``export NAME=value`` the demo printed
    environment: dict[str, str]


def _own_environment() -> dict[str, str]:
    """This process's environment without any corespond settings of the developer's."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CORESPOND_") and name != "DATABASE_URL"
    }


@pytest.fixture
def served(committed_db: Database, test_server: PgServer, tmp_path: Path) -> Iterator[Served]:
    """``corespond serve --migrate --demo`` on a fresh database, as ``make run`` starts it."""
    name = committed_db.engine.url.database
    assert name is not None
    port = _free_port()
    environment = {
        **_own_environment(),
        "DATABASE_URL": committed_db.engine.url.render_as_string(hide_password=False),
        "CORESPOND_MIGRATION_DATABASE_URL": test_server.url(name),
        "CORESPOND_SECRET_KEY": TEST_KEY.decode(),
        "CORESPOND_DATA_DIR": str(tmp_path / "var"),
        "CORESPOND_ENVIRONMENT": "development",
        "CORESPOND_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    out = tmp_path / "serve.out"
    with out.open("wb") as printed, (tmp_path / "serve.err").open("wb") as logged:
        server = subprocess.Popen(  # noqa: S603 - our own console script
            [str(BIN / "corespond"), "serve", "--migrate", "--demo", "--port", str(port)],
            env=environment,
            stdout=printed,
            stderr=logged,
            cwd=tmp_path,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base_url, server, tmp_path)
        exports = dict(re.findall(r"^\s*export (\w+)=(\S+)$", out.read_text(), re.MULTILINE))
        yield Served(Machine(base_url, _free_port()), exports, environment)
    finally:
        server.terminate()
        server.wait(timeout=20)


def _wait_until_ready(base_url: str, server: subprocess.Popen[bytes], logs: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(
        "corespond serve --migrate --demo did not start:\n"
        + (logs / "serve.out").read_text()
        + (logs / "serve.err").read_text()[-3000:]
    )


@pytest.mark.slow
def test_the_readme_walk_through_prints_what_it_says(served: Served, tmp_path: Path) -> None:
    commands, unmarked = walkthrough_commands(README.read_text())
    assert unmarked == [], f"shell blocks of the walk-through not marked checked: {unmarked}"
    assert len(commands) > 20
    shell = Shell(served.environment)
    background: list[Background] = []
    failures: list[str] = []
    try:
        for command in commands:
            if command.mode == "after stopping the background":
                for running in background:
                    running.wait_for(running.command.expected)
                    running.stop()
                background.clear()
            if command.mode == "background":
                log = tmp_path / f"background-{len(background)}.log"
                background.append(_start_background(shell, command, served.machine, log))
                continue
            failure = _run(shell, command, served)
            if failure:
                failures.append(failure)
        for running in background:
            running.wait_for(running.command.expected)
    finally:
        for running in background:
            running.stop()
        shell.close()
    assert not failures, "\n\n".join(failures)


def _run(shell: Shell, command: Command, served: Served) -> str | None:
    """Run one command; what is wrong with what it printed, if anything."""
    text = served.machine.command(command.text)
    paste = PASTE.match(command.text)
    if paste:
        name = paste.group("name")
        if name not in served.printed:
            return f"README.md:{command.line}: the demo does not print `export {name}=`"
        text = f"export {name}={served.printed[name]}"
    code, output = shell.run(text)
    expected = [served.machine.localise(line) for line in command.expected]
    if code == 0 and (not expected or prints_exactly(expected, output)):
        return None
    return (
        f"README.md:{command.line}: {command.text}\n"
        f"exit status {code}; the README says it prints:\n  "
        + "\n  ".join(expected)
        + "\nit printed:\n  "
        + "\n  ".join(output)
    )
