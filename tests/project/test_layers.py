"""The protocol core does no I/O, and the transport sits between it and its users.

``proto/licentia`` (import name ``licentia``) imports no grpc, socket, time, random or
asyncio and starts no thread (a lock from ``threading`` is fine); whatever talks to an
exchange, reads a clock or sleeps is in ``transport/`` (``licentia.transport``), which
imports the core only. The generated ``v1/*_pb2_grpc.py`` stubs import grpc: they are
protoc's output for the wire contract and stay beside the ``.proto`` files (``make
proto-check`` diffs them), but no module of the core imports them, so importing the core
never loads grpc (checked below in a fresh interpreter).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "proto" / "licentia"
TRANSPORT = ROOT / "transport"
#: Modules the core may not import (nor any of their submodules).
FORBIDDEN = ("grpc", "grpc_status", "socket", "time", "random", "asyncio")
#: What the core may take from ``threading``: locks, never a thread of its own.
THREADING_ALLOWED = {"Lock", "RLock"}


def _is_generated(path: Path) -> bool:
    return path.name.endswith(("_pb2.py", "_pb2_grpc.py"))


def _core_modules() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if not _is_generated(p))


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(level, module, names)`` of every import in ``path`` (``import x`` has no names)."""
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or "", [a.name for a in node.names]))
    return found


def _absolute(path: Path, root: Path, package: str, level: int, module: str) -> str:
    """The absolute name a (possibly relative) import in ``path`` under ``root`` means."""
    if level == 0:
        return module
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    base = parts[:-level]
    return ".".join([*base, module] if module else base)


def _violations(path: Path, root: Path = CORE) -> list[str]:
    """What in the core module ``path`` (under ``root``) breaks the no-I/O rule."""
    bad = []
    for level, module, names in _imports(path):
        name = _absolute(path, root, "licentia", level, module)
        top = name.split(".")[0]
        if top in FORBIDDEN:
            bad.append(f"imports {name}")
        if name.endswith("_pb2_grpc") or any(n.endswith("_pb2_grpc") for n in names):
            bad.append(f"imports generated gRPC stubs ({name})")
        if name == "threading" and (extra := set(names) - THREADING_ALLOWED):
            bad.append(f"takes {sorted(extra)} from threading")
        if name.startswith(("licentia.transport", "licentia.services", "licentia.clients")):
            bad.append(f"imports upward ({name})")
    source = path.read_text()
    for attribute in ("threading.Thread", "threading.Timer", "_thread."):
        if attribute in source:
            bad.append(f"uses {attribute}")
    return bad


def test_the_walk_sees_the_whole_core() -> None:
    names = {p.name for p in _core_modules()}
    assert {"__init__.py", "verify.py", "status.py", "token.py"} <= names
    assert "follow.py" not in names  # the follower is the transport's


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_no_core_module_does_io(path: Path) -> None:
    assert _violations(path) == []


def test_the_checker_catches_each_kind_of_io(tmp_path: Path) -> None:
    # The rule must fail when broken: each line below, alone in a core module, is caught.
    for line in (
        "import grpc",
        "import grpc.aio",
        "from time import monotonic",
        "import random",
        "import socket",
        "import asyncio",
        "from threading import Thread",
        "import threading\nthreading.Thread(target=print).start()",
        "from .v1 import licences_pb2_grpc",
        "from licentia.transport import SignedChannel",
    ):
        module = tmp_path / "bad.py"
        module.write_text(line + "\n")
        assert _violations(module, tmp_path), line
    ok = tmp_path / "ok.py"
    ok.write_text("from threading import Lock\nimport secrets\nfrom .errors import Reason\n")
    assert _violations(ok, tmp_path) == []


def test_importing_the_core_loads_no_grpc_and_starts_no_thread() -> None:
    names = []
    for path in _core_modules():
        rel = path.relative_to(CORE).with_suffix("")
        parts = ["licentia", *rel.parts]
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    # The generated messages (not the gRPC stubs) are part of the core too.
    names += [f"licentia.v1.{p.stem}" for p in sorted((CORE / "v1").glob("*_pb2.py"))]
    program = (
        "import importlib, sys, threading\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'grpc_status'))\n"
        "assert not loaded, loaded\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "print('ok', len(sys.modules))\n"
    )
    done = subprocess.run(  # a fresh interpreter: this one has loaded grpc long ago
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


@pytest.mark.parametrize(
    "path", sorted(TRANSPORT.rglob("*.py")), ids=lambda p: str(p.relative_to(TRANSPORT))
)
def test_the_transport_imports_only_the_core(path: Path) -> None:
    # Arrows only point down: services and clients import the transport, never the reverse.
    for level, module, _ in _imports(path):
        name = _absolute(path, TRANSPORT, "licentia.transport", level, module)
        assert not name.startswith(("licentia.services", "licentia.clients")), name
        assert name.split(".")[0] not in ("services", "clients"), name


#: Names the mapped trees had for mypy before it checked the installed layout (issue 17,
#: step 6). Nothing imports them: every module imports ``licentia.…`` as it runs.
_MIRRORS = ("services", "clients", "transport", "bench")


def _mirror_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        found += [n for n in names if n.split(".")[0] in _MIRRORS]
    return found


def test_nothing_imports_a_tree_by_any_name_but_its_package_name() -> None:
    offenders = []
    for top in ("proto/licentia", "transport", "services", "clients", "tests", "bench", "demo"):
        for file in sorted((ROOT / top).rglob("*.py")):
            if file.name.endswith(("_pb2.py", "_pb2_grpc.py")):
                continue
            for name in _mirror_imports(file.read_text(encoding="utf-8")):
                offenders.append(f"{file.relative_to(ROOT)}: {name}")
    assert offenders == []
    assert _mirror_imports("if TYPE_CHECKING:\n    from services.app import build\n") == [
        "services.app"
    ]


def test_no_test_module_imports_another() -> None:
    """Shared fixtures live in conftest files and helpers in harness modules: a test module
    imported by another would run its tests twice and tie the two together."""
    offenders = []
    for file in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1].startswith(
                "test_"
            ):
                offenders.append(f"{file.relative_to(ROOT)}: {node.module}")
    assert offenders == []


#: A module longer than this says at its top why it is one module (issue 17).
LONG_MODULE = 500


def test_every_long_module_says_why_it_is_one() -> None:
    unexplained = []
    for top in ("proto/licentia", "transport", "services", "clients"):
        for file in sorted((ROOT / top).rglob("*.py")):
            if file.name.endswith(("_pb2.py", "_pb2_grpc.py")):
                continue
            text = file.read_text(encoding="utf-8")
            if len(text.splitlines()) > LONG_MODULE and "Why one module" not in (
                ast.get_docstring(ast.parse(text)) or ""
            ):
                unexplained.append(f"{file.relative_to(ROOT)}: {len(text.splitlines())} lines")
    assert unexplained == []
