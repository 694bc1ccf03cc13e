"""The wallet is a command line over the holder SDK: it builds no protobuf message, makes
no call of its own and imports no gRPC; the SDK writes no method path by hand; no wallet
or SDK module grows past ~500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WALLET = sorted((ROOT / "clients" / "wallet").glob("*.py"))
HOLDER = sorted((ROOT / "clients" / "holder").glob("*.py"))


def _pb2_modules(tree: ast.Module) -> set[str]:
    """The names a module binds to generated ``*_pb2`` modules."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "licentia.v1":
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.asname or a.name for a in node.names if "_pb2" in a.name)
    return names


def _problems(path: Path) -> list[str]:
    """Where ``path`` builds or parses a message, makes a call, or imports gRPC."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pb2 = _pb2_modules(tree)
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [module or "", *(a.name for a in node.names)]
            if any(n == "grpc" or n.startswith("grpc.") for n in names):
                found.append(f"{where} imports grpc")
            if {"SignedChannel", "AsyncSignedChannel"} & set(names):
                found.append(f"{where} imports a channel")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if isinstance(f.value, ast.Name) and f.value.id in pb2:
                found.append(f"{where} builds a protobuf message")
            if f.attr == "FromString":
                found.append(f"{where} parses a protobuf message")
            if f.attr in {"unary", "server_stream", "stream_stream"}:
                found.append(f"{where} makes a raw call")
    return found


def test_the_wallet_builds_no_message_and_makes_no_call() -> None:
    assert WALLET
    assert [p for path in WALLET for p in _problems(path)] == []


def test_the_check_sees_a_message_built_and_a_raw_call(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import grpc\nfrom licentia.v1 import registry_pb2\n"
        "def f(rpc):\n    return rpc.unary('m', registry_pb2.ListAssetsRequest(), None)\n",
        encoding="utf-8",
    )
    assert [p.split(" ", 1)[1] for p in _problems(bad)] == [
        "imports grpc",
        "makes a raw call",
        "builds a protobuf message",
    ]


def test_the_wallet_and_sdk_modules_stay_small() -> None:
    # (no hand-written method path anywhere: tests/project/test_one_definition.py)
    for path in WALLET + HOLDER:
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 500, path.name
