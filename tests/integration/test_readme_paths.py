"""README's walk-throughs, run as a newcomer runs them: the operator's, the holder's, the
advertiser's and the platform's, command by command, as real processes.

The blocks are README's ```console blocks marked ``<!-- walkthrough: PATH -->`` (the convention
is in ``readme_harness.py`` and in README's "Quickstart"). They run in the order of the
document, from an empty directory standing for the fresh clone, with the project's
``.venv/bin`` first on ``PATH``, ``HOME`` beside it, and no ``LICENTIA_*`` variable but
those the README exports.
Every command must exit 0 (or the status its ``# exit N`` comment states), print no
``Traceback``, and print each line the README shows for it (keys, ids, digests, times and
addresses aside; ``…`` stands for anything); no ``*.log`` the walk-through writes may hold a
traceback either. What the test does for the reader's shell:

- ``make install`` and ``. .venv/bin/activate``: done already (this test runs in that venv);
- ``export NAME=VALUE``: sets the variable for the commands after it; ``cd DIR`` (after
  ``mkdir -p DIR &&``) changes the directory of the commands after it;
- a command ending in ``&`` runs in the background; the test waits for as many lines of output
  as the README shows for it. Its ``127.0.0.1:PORT`` addresses become ``127.0.0.1:0`` (the
  exchange the walk-through starts takes free ports); ``wait`` waits as the reader's shell
  does: a bare ``wait`` for every background command, the exchange too (which never ends:
  the test fails where the reader's shell would hang), ``wait %N`` for the Nth and
  ``wait $!`` for the last started (they must exit 0; the lines shown after ``wait`` are
  checked against what they printed); ``kill %N`` stops the Nth (the exchange, ``%1``,
  must exit 0);
- values the README shows in a command's output — addresses ``HOST:PORT`` and 32-digit hex
  ids — stand for the ones this run printed at the same place, and are replaced by them (an
  id by its same-length prefix) in the commands after it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from .readme_harness import Command, walkthrough

PATHS = {"operator", "holder", "advertiser", "platform"}
_ADDRESS = re.compile(r"\b127\.0\.0\.1:\d+\b")
_ID = re.compile(r"\b[0-9a-f]{32}\b")
_HEX = re.compile(r"\b[0-9a-f]{6,32}\b")
_EXIT = re.compile(r"#\s*exit (\d+)\s*$")
_CD = re.compile(r"(mkdir -p (\S+) && )?cd (\S+)")
_KILL = re.compile(r"kill (%\d+|\$!)")
#: Commands the test does itself (it runs inside the installed venv).
_DONE_ALREADY = {"make install", ". .venv/bin/activate", "source .venv/bin/activate"}


#: What differs from run to run in a line of output: keys, ids, digests, times, addresses.
_VOLATILE = re.compile(
    r"ed25519:[\w-]+…?|\b[0-9a-f]{6,}\b|\d{4}-\d\d-\d\d \d\d:\d\d UTC|127\.0\.0\.1:\d+|…"
)


def _shape(line: str) -> re.Pattern[str]:
    """A line the README shows, as a pattern: its words exactly, its values any."""
    parts = _VOLATILE.split(line.strip())
    return re.compile(".+?".join(re.escape(p) for p in parts))


@dataclass
class Background:
    command: Command
    process: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

    def start_readers(self) -> None:
        for stream, into in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            reader = threading.Thread(target=_drain, args=(stream, into), daemon=True)
            reader.start()
            self.readers.append(reader)


def _drain(stream: IO[str] | None, into: list[str]) -> None:
    assert stream is not None
    for line in iter(stream.readline, ""):
        into.append(line.rstrip("\n"))


class Shell:
    """The reader's shell, as far as the walk-through needs one."""

    def __init__(self, workdir: Path) -> None:
        self.cwd = workdir
        venv_bin = Path(sys.executable).parent
        env = {k: v for k, v in os.environ.items() if not k.startswith("LICENTIA_")}
        env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
        env["HOME"] = str(workdir.parent / "home")
        env.pop("XDG_DATA_HOME", None)
        (workdir.parent / "home").mkdir()
        self.env = env
        self.values: dict[str, str] = {}  # what the README shows -> what this run printed
        self.background: list[Background] = []
        #: How long a background command may take to end once waited for or stopped.
        self.wait_seconds: float = 60

    def learn(self, cmd: Command, printed: list[str]) -> None:
        """Check that each line the README shows for ``cmd`` was printed (its values aside),
        and pair the values it shows with those printed."""
        for line in cmd.shown:
            shape = _shape(line)
            assert any(shape.fullmatch(p.strip()) for p in printed), (
                f"{cmd.where}: the README shows {line!r}; the command printed:\n"
                + "\n".join(printed)
            )
        for pattern in (_ADDRESS, _ID):
            shown = [v for line in cmd.shown for v in pattern.findall(line)]
            got = [v for line in printed for v in pattern.findall(line)]
            assert len(got) >= len(shown), (
                f"{cmd.where}: the README shows {shown}, the command printed {printed}"
            )
            for a, b in zip(shown, got, strict=False):
                assert self.values.setdefault(a, b) == b, f"{cmd.where}: {a} is two things"

    def substitute(self, text: str) -> str:
        text = _ADDRESS.sub(lambda m: self.values.get(m.group(0), m.group(0)), text)

        def an_id(m: re.Match[str]) -> str:
            for shown, got in self.values.items():
                if _ID.fullmatch(shown) and shown.startswith(m.group(0)):
                    return got[: len(m.group(0))]
            return m.group(0)

        return _HEX.sub(an_id, text)

    def run(self, cmd: Command) -> None:
        text = cmd.text
        if text in _DONE_ALREADY:
            return
        if m := _CD.fullmatch(text):
            if m.group(2):
                (self.cwd / m.group(2)).mkdir(parents=True, exist_ok=True)
            self.cwd = (self.cwd / m.group(3)).resolve()
            assert self.cwd.is_dir(), f"{cmd.where}: no directory {self.cwd}"
            return
        if text.startswith("export "):
            for word in shlex.split(self.substitute(text))[1:]:
                name, _, value = word.partition("=")
                self.env[name] = value
            return
        if text == "wait" or text.startswith("wait "):
            jobs = [self._job(cmd, spec) for spec in text.split()[1:]] or self.background
            for job in jobs:
                self._finish(job, signal_first=False)
            self.learn(cmd, [line for job in jobs for line in job.out])
            return
        if m := _KILL.fullmatch(text):
            self._finish(self._job(cmd, m.group(1)), signal_first=True)
            return
        if text.endswith("&"):
            self._start(cmd)
            return
        m = _EXIT.search(text)
        expected = int(m.group(1)) if m else 0
        done = subprocess.run(
            ["bash", "-c", self.substitute(text)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        report = f"{cmd.where}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        assert "Traceback" not in done.stderr + done.stdout, report
        assert done.returncode == expected, f"exit {done.returncode}, not {expected}: {report}"
        self.learn(cmd, done.stdout.splitlines())

    def _start(self, cmd: Command) -> None:
        text = _ADDRESS.sub("127.0.0.1:0", cmd.text[:-1].strip())
        process = subprocess.Popen(
            ["bash", "-c", "exec " + self.substitute(text)],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        job = Background(cmd, process)
        job.start_readers()
        self.background.append(job)
        deadline = time.monotonic() + 30
        while len(job.out) < len(cmd.shown):
            assert process.poll() is None, f"{cmd.where}: ended: {job.out} {job.err}"
            assert time.monotonic() < deadline, f"{cmd.where}: printed only {job.out}"
            time.sleep(0.05)
        self.learn(cmd, job.out)

    def _job(self, cmd: Command, spec: str) -> Background:
        """The background command ``%N`` (the Nth started) or ``$!`` (the last) names."""
        if spec == "$!" and self.background:
            return self.background[-1]
        m = re.fullmatch(r"%(\d+)", spec)
        number = int(m.group(1)) if m else 0
        assert 1 <= number <= len(self.background), (
            f"{cmd.where}: {spec} names no background command of the walk-through"
        )
        return self.background[number - 1]

    def _finish(self, job: Background, *, signal_first: bool) -> None:
        if signal_first:
            job.process.send_signal(signal.SIGTERM)
        try:
            code = job.process.wait(timeout=self.wait_seconds)
        except subprocess.TimeoutExpired:
            number = self.background.index(job) + 1
            raise AssertionError(
                f"{job.command.where}: job %{number} has not ended after {self.wait_seconds} s;"
                " a `wait` that waits for it would hang the reader's shell here"
            ) from None
        for reader in job.readers:  # to the end of what it printed
            reader.join(timeout=10)
        report = f"{job.command.where}\nstdout: {job.out}\nstderr: {job.err}"
        assert not any("Traceback" in line for line in job.out + job.err), report
        assert code == 0, f"exit {code}: {report}"

    def stop_all(self) -> None:
        for job in self.background:
            if job.process.poll() is None:
                job.process.kill()
                job.process.wait(timeout=10)


def test_the_readme_marks_a_walkthrough_for_every_path() -> None:
    """Each newcomer has a walk-through (a marker that no longer parses would skip it)."""
    walk = walkthrough()
    assert walk.paths() == PATHS
    assert "acme.py" in walk.files
    assert "photoshare.py" in walk.files


def test_the_readme_walkthroughs_run_as_written(tmp_path: Path) -> None:
    """Operator, holder, advertiser and platform, in the README's order, against the exchange
    the operator's walk-through starts: no traceback, every command as the README says."""
    if shutil.which("curl") is None:
        pytest.skip("the operator's walk-through reads the metrics and the gateway with curl")
    walk = walkthrough()
    clone = tmp_path / "clone"  # stands for the fresh clone the reader starts in
    clone.mkdir()
    shell = Shell(clone)
    try:
        for cmd in walk.commands:
            if cmd.text.startswith("python "):  # the examples the README says to save
                for name, code in walk.files.items():
                    (shell.cwd / name).write_text(code, encoding="utf-8")
            shell.run(cmd)
    finally:
        shell.stop_all()
    assert list(clone.iterdir()) == [], "the walk-through wrote into the clone"
    workdir = shell.cwd
    assert shell.background, "the operator's walk-through starts no exchange"
    assert shell.background[0].process.returncode == 0
    for log in workdir.glob("*.log"):
        assert "Traceback" not in log.read_text(), f"{log.name}:\n{log.read_text()}"
    assert (workdir / "licence.txt").exists()  # the advertiser got its licence


def test_wait_and_kill_run_as_in_the_readers_shell(tmp_path: Path) -> None:
    """A bare ``wait`` waits for the exchange too (job %1, which never ends): it fails, as
    the reader's shell would hang; ``wait $!`` and ``wait %2`` wait for the command named."""
    (tmp_path / "clone").mkdir()
    shell = Shell(tmp_path / "clone")
    shell.wait_seconds = 1
    server = (  # stands for the exchange: runs until SIGTERM, then exits 0
        "python -c 'import signal, sys, time;"
        " signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); time.sleep(30)'"
    )
    try:
        shell.run(Command("operator", 1, f"{server} &"))
        shell.run(Command("advertiser", 2, "python -c 'print(\"started\")' &", ["started"]))
        with pytest.raises(AssertionError, match=r"job %1 has not ended .* would hang"):
            shell.run(Command("advertiser", 3, "wait", ["started"]))
        shell.run(Command("advertiser", 4, "wait $!", ["started"]))
        shell.run(Command("advertiser", 5, "wait %2", ["started"]))
        with pytest.raises(AssertionError, match="the README shows 'lpr1"):
            shell.run(Command("advertiser", 6, "wait %2", ["lpr1.…"]))
        with pytest.raises(AssertionError, match="%3 names no background command"):
            shell.run(Command("advertiser", 7, "wait %3"))
        shell.run(Command("operator", 8, "kill %1"))
        assert [job.process.returncode for job in shell.background] == [0, 0]
    finally:
        shell.stop_all()


def _script(name: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, name],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_examples_without_an_exchange_or_with_a_wrong_passphrase_say_so(
    tmp_path: Path,
) -> None:
    """A newcomer who runs acme.py or photoshare.py before starting the exchange (or with
    LICENTIA_SERVER naming another) reads where it looked, not a traceback; so does one who
    mistypes the key file's passphrase."""
    files = walkthrough().files
    for name in ("acme.py", "photoshare.py"):
        (tmp_path / name).write_text(files[name], encoding="utf-8")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICENTIA_")}
    env |= {"LICENTIA_SERVER": closed, "LICENTIA_KEY_PASSPHRASE": "a passphrase for acme"}
    for name in ("acme.py", "photoshare.py"):
        done = _script(name, tmp_path, env)
        assert (done.returncode, done.stderr.count("Traceback")) == (1, 0), done.stderr
        assert f"could not reach the exchange at {closed}" in done.stderr, done.stderr
    # The key file it made on the way, opened with another passphrase: said, no traceback.
    env["LICENTIA_KEY_PASSPHRASE"] = "not the passphrase of acme.key"
    done = _script("acme.py", tmp_path, env)
    assert (done.returncode, done.stderr.count("Traceback")) == (1, 0), done.stderr
    assert "acme.key: wrong passphrase" in done.stderr, done.stderr
