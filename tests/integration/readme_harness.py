"""The code blocks of README.md and docs/*.md, read as a newcomer would run them.

Shared by ``test_doc_examples.py`` (every ```python block, executed in process) and
``test_readme_paths.py`` (README's shell walk-throughs, run as real processes).

The walk-through convention (README, "Quickstart"):

- ``<!-- walkthrough: PATH -->`` on the line before a ```console block makes it part of the
  walk-through of PATH (``operator``, ``holder``, ``advertiser``, ``platform``). Every marked
  block runs, in the order of the document, in one working directory.
- In such a block a line ``$ COMMAND`` is a command (a ``\\`` at its end continues it on the
  next line); the lines up to the next command are the output the README shows for it. A
  trailing ``# exit N`` comment gives the exit status it must have when not 0.
- ``<!-- walkthrough-file: NAME -->`` on the line before a ```python block: the walk-through
  saves that block as the file NAME (the README tells the reader to).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]

_PYTHON_FENCE = re.compile(r"^```python\s*$")
_CONSOLE_FENCE = re.compile(r"^```console\s*$")
_WALKTHROUGH = re.compile(r"^<!--\s*walkthrough:\s*([a-z]+)\s*-->\s*$")
_WALKTHROUGH_FILE = re.compile(r"^<!--\s*walkthrough-file:\s*([\w.-]+)\s*-->\s*$")


def _block_end(lines: list[str], start: int, path: Path, opening: int) -> int:
    end = start
    while end < len(lines) and lines[end].strip() != "```":
        end += 1
    if end == len(lines):
        raise AssertionError(f"{path.name}:{opening + 1}: a code block is never closed")
    return end


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """Each ```python block of ``path``: the line number of its first line of code, and its
    code. An unclosed block is an error."""
    blocks: list[tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if _PYTHON_FENCE.match(lines[i]):
            start = i + 1
            end = _block_end(lines, start, path, i)
            blocks.append((start + 1, "\n".join(lines[start:end]) + "\n"))
            i = end
        i += 1
    return blocks


@dataclass
class Command:
    """One ``$ `` line of a walk-through: where it is, what it runs, what the README shows."""

    path: str  #: the walk-through it belongs to (operator, holder, ...)
    line: int  #: its line in README.md
    text: str  #: the command, continuation lines joined
    shown: list[str] = field(default_factory=list)  #: the output the README shows for it

    @property
    def where(self) -> str:
        return f"README.md:{self.line} ({self.path}): $ {self.text}"


@dataclass
class Walkthrough:
    """README's marked blocks: the commands in order, and the files to save first."""

    commands: list[Command]
    files: dict[str, str]

    def paths(self) -> set[str]:
        return {c.path for c in self.commands}


def walkthrough(path: Path = README) -> Walkthrough:
    """The marked ```console blocks of ``path``, in order, and its marked ```python files."""
    lines = path.read_text(encoding="utf-8").splitlines()
    commands: list[Command] = []
    files: dict[str, str] = {}
    for i, line in enumerate(lines[:-1]):
        if (m := _WALKTHROUGH_FILE.match(line)) and _PYTHON_FENCE.match(lines[i + 1]):
            end = _block_end(lines, i + 2, path, i + 1)
            files[m.group(1)] = "\n".join(lines[i + 2 : end]) + "\n"
        elif m := _WALKTHROUGH.match(line):
            if not _CONSOLE_FENCE.match(lines[i + 1]):
                raise AssertionError(
                    f"{path.name}:{i + 1}: a walkthrough marker not before ```console"
                )
            end = _block_end(lines, i + 2, path, i + 1)
            current: Command | None = None
            j = i + 2
            while j < end:
                text = lines[j]
                if text.startswith("$ "):
                    first = j
                    cmd = text[2:]
                    while cmd.endswith("\\") and j + 1 < end:
                        j += 1
                        cmd = cmd[:-1] + " " + lines[j].strip()
                    current = Command(m.group(1), first + 1, cmd.strip())
                    commands.append(current)
                elif current is None:
                    raise AssertionError(f"{path.name}:{j + 1}: output before any command")
                else:
                    current.shown.append(text)
                j += 1
    return Walkthrough(commands, files)
