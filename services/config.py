"""``licentia-server --config FILE``: every flag from a TOML file, under the environment.

A setting comes from, in this order of precedence: its flag on the command line; its
environment variable (``LICENTIA_…``, named at the end of the flag's ``--help`` line); the
config file; the built-in default. The file's keys are the flags' names without the dashes
in front, with ``-`` or ``_`` (``max-term-days`` or ``max_term_days``), at the top level::

    listen = "0.0.0.0:7700"
    data-dir = "/var/lib/licentia"
    services = ["registry", "exchange", "licences", "verification"]   # or "a,b,c"
    follower = false

A key of any ``licentia-server`` subcommand is accepted (one file serves ``serve``,
``rotate-key`` and ``deposit``); each command takes the keys it has. A key no subcommand has
is an error naming the nearest valid key; so is a value of the wrong type. Values are
checked by the command's own checks afterwards, as a flag's would be.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: The variable that names a config file when ``--config`` is not given.
CONFIG_ENV = "LICENTIA_CONFIG"
#: The largest config file read (a typo in the path must not read a disk image).
MAX_CONFIG_BYTES = 1024 * 1024
_ENV = re.compile(r"\[(LICENTIA_[A-Z0-9_]+)\]\s*$")
#: Flags that never come from a file.
_NOT_SETTINGS = frozenset({"help", "config"})
#: Settings whose values are secrets, or hold one: redacted when printed.
_SECRET = re.compile(r"(password|secret|token)", re.IGNORECASE)


class ConfigError(ValueError):
    """The config file cannot be used: every problem found, one a line."""


def env_name(action: argparse.Action) -> str | None:
    """The environment variable of a flag, as its ``--help`` line names it (``[LICENTIA_X]``)."""
    found = _ENV.search(action.help or "")
    return found.group(1) if found else None


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """A parser's settings by key (the long flag without its dashes)."""
    out: dict[str, argparse.Action] = {}
    for action in parser._actions:  # argparse has no public list of a parser's actions
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.dest not in _NOT_SETTINGS:
            out[longs[0][2:]] = action
    return out


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """A parser's subcommands by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def read(path: Path) -> dict[str, Any]:
    """The TOML table in ``path``; raises :class:`ConfigError` if it cannot be read."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: not TOML: {e}") from None


def _convert(key: str, action: argparse.Action, value: Any) -> Any:
    """``value`` as the flag's type; raises ``ValueError`` saying what the key takes."""
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise ValueError(f"{key} is true or false")
        return value
    kind = action.type
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} is a whole number")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} is a number")
        return float(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and key == "services":
        value = ",".join(value)
    if not isinstance(value, str):
        raise ValueError(f"{key} is a string")
    return Path(value) if kind is Path else value


def apply(
    root: argparse.ArgumentParser,
    command: str,
    table: Mapping[str, Any],
    source: str,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Make ``table``'s settings the defaults of ``root``'s subcommand ``command`` (those
    whose environment variable is not set: the environment wins over the file); the
    settings applied, by dest. Raises :class:`ConfigError` listing every unknown key and
    every value of the wrong type."""
    environ = os.environ if environ is None else environ
    subs = subcommands(root)
    known: dict[str, dict[str, argparse.Action]] = {n: options(p) for n, p in subs.items()}
    everywhere = sorted({k for opts in known.values() for k in opts})
    mine = known.get(command, {})
    problems: list[str] = []
    applied: dict[str, Any] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("_", "-")
        if key not in everywhere:
            near = difflib.get_close_matches(key, everywhere, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            problems.append(f"{source}: unknown key {raw_key!r}{hint}")
            continue
        action = mine.get(key)
        if action is None:  # another subcommand's setting
            continue
        try:
            converted = _convert(key, action, value)
        except ValueError as e:
            problems.append(f"{source}: {e} (got {json.dumps(value, default=str)})")
            continue
        variable = env_name(action)
        if variable is not None and variable in environ:
            continue
        applied[action.dest] = converted
    if problems:
        raise ConfigError("\n".join(problems))
    subs[command].set_defaults(**applied)
    return applied


@dataclass(frozen=True)
class Setting:
    """One resolved setting, for ``check-config``: its key, value and where it came from."""

    key: str
    value: Any
    source: str


def resolve(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    argv: Sequence[str],
    from_file: Iterable[str],
    environ: Mapping[str, str] | None = None,
) -> list[Setting]:
    """Every setting of ``parser`` (a subcommand) in ``args``, with its source: ``flag``,
    the environment variable, ``file`` or ``default``."""
    environ = os.environ if environ is None else environ
    file_dests = set(from_file)
    out = []
    for key, action in options(parser).items():
        given = any(a == o or a.startswith(o + "=") for a in argv for o in action.option_strings)
        variable = env_name(action)
        if given:
            source = "flag"
        elif variable is not None and variable in environ:
            source = variable
        elif action.dest in file_dests:
            source = "file"
        else:
            source = "default"
        out.append(Setting(key, getattr(args, action.dest, None), source))
    return out


def redact(key: str, value: Any) -> Any:
    """``value`` fit to print: a URL's password and any secret-named setting hidden."""
    if isinstance(value, str) and _SECRET.search(key):
        return "***"
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password is not None:
            netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
            if parts.port is not None:
                netloc += f":{parts.port}"
            value = urlunsplit(parts._replace(netloc=netloc))
        value = re.sub(r"(password=)[^&\s]*", r"\1***", value)
    return value


def render(settings: Iterable[Setting]) -> str:
    """The settings as a TOML file (each line's source in a comment), secrets redacted."""
    lines = []
    for s in settings:
        value = redact(s.key, s.value)
        if value is None or value == "":
            lines.append(f"# {s.key} is not set  ({s.source})")
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = repr(value)
        else:
            text = json.dumps(str(value))
        lines.append(f"{s.key} = {text}  # {s.source}")
    return "\n".join(lines)
