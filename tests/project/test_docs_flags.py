"""The flags and defaults README.md and docs/ name are the ones the commands' ``--help`` shows.

Every ``--flag`` written in README.md or docs/*.md must be a flag of one of the commands the
docs name — ``licentia-server`` and its subcommands, ``licentia-wallet`` and its subcommands,
``licentia-audit``, ``licentia-verify``, and the ``python bench/….py`` scripts — as their
``--help`` prints it. Every default the docs give for a flag (the flag table of
docs/operations.md, and "``--flag`` … default X" in the prose) must be that flag's default:
the parser's, with no ``LICENTIA_*`` variable set, or the one its ``--help`` states. So the
docs cannot drift from the code again (they listed four of the six ``--services``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from licentia.clients.auditor import cli as audit_cli
from licentia.clients.verifier import cli as verify_cli
from licentia.clients.wallet import cli as wallet_cli
from licentia.services import app, server

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Flags the docs name that belong to tools other than ours.
OTHER_TOOLS = {"--strict": "mypy (`make test` runs `mypy --strict`)"}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
#: "`--flag …` … default VALUE": a value in backticks, a number, a currency code or a path.
PROSE_DEFAULT = re.compile(
    r"`(--[a-z][a-z0-9-]*)[^`]*`((?:(?!`--)[^\n])*?)\bdefault\s+"
    r"(`[^`]+`|\d[\w.]*|[A-Z]{3}\b|[~./][^\s,;)]*)"
)


@dataclass
class Flags:
    """What the commands' ``--help`` shows: each flag's help lines and defaults."""

    helps: dict[str, list[str]] = field(default_factory=dict)
    defaults: dict[str, list[object]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)

    def add(self, parser: argparse.ArgumentParser) -> None:
        """A parser and, recursively, its subcommands."""
        self.texts.append(parser.format_help())  # what `--help` prints
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    self.add(sub)
            for flag in action.option_strings:
                self.helps.setdefault(flag, []).append(action.help or "")
                self.defaults.setdefault(flag, []).append(action.default)

    def shown(self, flag: str) -> bool:
        """The flag appears in some ``--help``."""
        return any(flag in FLAG.findall(t) for t in self.texts)


@pytest.fixture(scope="module")
def flags() -> Iterator[Flags]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("LICENTIA_")}
    for k in saved:
        del os.environ[k]  # the parsers read their defaults from the environment
    try:
        found = Flags()
        for parser in (
            server._parser(),
            wallet_cli.parser(),
            audit_cli.build_parser(),
            verify_cli.build_parser(),
        ):
            found.add(parser)
        for script in sorted(set(_bench_scripts())):
            out = subprocess.run(
                [sys.executable, str(ROOT / script), "--help"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            # Every script's --help works without its extras (bench/fuzz.py without atheris).
            assert out.returncode == 0, f"{script} --help: {out.stderr}"
            found.texts.append(out.stdout)
        yield found
    finally:
        os.environ.update(saved)


def _bench_scripts() -> Iterator[str]:
    for doc in DOCS:
        yield from re.findall(r"python (bench/\w+\.py)", doc.read_text())


def _same(documented: str, default: object) -> bool:
    """A default as the docs write it and as the parser holds it."""
    value = documented.strip("`")
    if isinstance(default, bool):
        return value == ("on" if default else "off")
    if default is None or default == "":
        return value == "none"
    if isinstance(default, int | float):
        try:
            return float(value) == float(default)
        except ValueError:
            return False
    if isinstance(default, Path) or value.startswith(("./", "~/", "/")):
        return Path(value).expanduser() == Path(str(default)).expanduser()
    return value == str(default)


def _ok(flags: Flags, flag: str, documented: str) -> bool:
    """The documented default is the flag's default, or its help states it."""
    return any(_same(documented, d) for d in flags.defaults.get(flag, [])) or any(
        f"default {documented.strip('`')}" in h for h in flags.helps.get(flag, [])
    )


def test_every_flag_the_docs_name_is_in_some_help(flags: Flags) -> None:
    missing = []
    for doc in DOCS:
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            for flag in FLAG.findall(line):
                if flag not in OTHER_TOOLS and not flags.shown(flag):
                    missing.append(f"{doc.name}:{n}: {flag}")
    assert missing == []


def _table_rows() -> Iterator[tuple[list[str], list[str], str, str]]:
    """docs/operations.md's flag table: (flags, variables, default, meaning) per row."""
    for line in (ROOT / "docs" / "operations.md").read_text().splitlines():
        if line.startswith("| `--"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            yield FLAG.findall(cells[0]), re.findall(r"LICENTIA_\w+", cells[1]), cells[2], cells[3]


def test_the_server_flag_table_matches_the_servers_help(flags: Flags) -> None:
    serve = next(
        a for a in server._parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["serve"]
    serve_flags = {f for a in serve._actions for f in a.option_strings}
    table = list(_table_rows())
    documented = {f for row in table for f in row[0]}
    # Every flag of `serve` has its row, and every row names flags of `serve`.
    assert documented == serve_flags - {"-h", "--help"}
    wrong = []
    for names, variables, default, meaning in table:
        for flag, variable in zip(names, variables or [""] * len(names), strict=True):
            if variable and not any(f"[{variable}]" in h for h in flags.helps[flag]):
                wrong.append(f"{flag}: {variable} is not in its help")
            if flag == "--services":
                listed = set(re.findall(r"`([a-z,]+)`", meaning)[0].split(","))
                if default != "all" or listed != set(app.SERVICES):
                    wrong.append(f"--services: {sorted(listed)} != {sorted(app.SERVICES)}")
            elif "DATA_DIR" in default:  # derived from --data-dir: stated in the help
                if "data" not in " ".join(flags.helps[flag]).lower():
                    wrong.append(f"{flag}: the help does not say where it defaults to")
            elif not _ok(flags, flag, default):
                wrong.append(f"{flag}: documented default {default}, {flags.defaults[flag]}")
    assert wrong == []


def test_every_default_the_prose_gives_is_the_flags_default(flags: Flags) -> None:
    checked, wrong = 0, []
    for doc in DOCS:
        for match in PROSE_DEFAULT.finditer(doc.read_text()):
            flag, value = match.group(1), match.group(3)
            checked += 1
            if not _ok(flags, flag, value):
                wrong.append(f"{doc.name}: {flag} default {value}: {flags.defaults.get(flag)}")
    assert wrong == []
    assert checked >= 5  # the pattern still finds the defaults it is there for


#: The commands the docs name, and the parser of each.
COMMANDS = {
    "licentia-server": server._parser,
    "licentia-wallet": wallet_cli.parser,
    "licentia-audit": audit_cli.build_parser,
    "licentia-verify": verify_cli.build_parser,
}
#: A command line: the command first (after a prompt or a path), then its words.
COMMAND = re.compile(
    r"^\s*(?:\$ )?(?:[\w./-]*/)?(licentia-(?:server|wallet|audit|verify))((?: [a-z][a-z0-9-]*)*)"
)
MAKE = re.compile(r"\bmake ([a-z][a-z0-9-]*)")


def _code(text: str) -> Iterator[str]:
    """What a document shows as code: fenced blocks and inline spans."""
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.S):
        yield from block.splitlines()
    yield from re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_command_and_make_target_the_docs_name_exists() -> None:
    """``licentia-wallet rules list``, ``make crash``: each word a subcommand, each a target."""
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M))
    wrong, checked = [], 0
    for doc in DOCS:
        for code in _code(doc.read_text()):
            for target in MAKE.findall(code):
                checked += 1
                if target not in targets:
                    wrong.append(f"{doc.name}: make {target}")
            for command, words in COMMAND.findall(code)[:1]:
                parser = COMMANDS[command]()
                for word in words.split():
                    subs = _subcommands(parser)
                    if not subs:
                        break  # an argument's value, not a command
                    checked += 1
                    if word not in subs:
                        wrong.append(f"{doc.name}: {command}{words}: no command {word!r}")
                        break
                    parser = subs[word]
    assert wrong == []
    assert checked >= 30  # the patterns still find what they are there for


def test_the_readme_lists_every_document() -> None:
    readme = (ROOT / "README.md").read_text()
    listed = readme[readme.index("## Documents") :]
    missing = [
        d.name for d in sorted((ROOT / "docs").glob("*.md")) if f"docs/{d.name}" not in listed
    ]
    assert missing == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_says_its_version(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--version`` on every command: the release the distribution was built with."""
    with pytest.raises(SystemExit) as e:
        COMMANDS[command]().parse_args(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"{command} {importlib.metadata.version('licentia')}\n"


def test_the_server_says_its_version_before_any_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``licentia-server --version`` is not taken for the flags of ``serve``."""
    with pytest.raises(SystemExit) as e:
        server.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("licentia-server ")
