"""Every line the server writes to stderr is one JSON object (docs/operations.md, Logs):
library loggers, warnings and uncaught exceptions included, tracebacks inside the object."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc  # type: ignore[import-untyped]

from .exchange_harness import needs_openssl, self_signed_certificate, wait_for

#: The real server command, with a thread that, once the server listens, does what libraries
#: and bugs do: log through a library's logger (psycopg_pool's words when PostgreSQL is
#: down; grpc's when a handler blows up), warn, let an exception escape a thread, raise in a
#: finaliser (an "Exception ignored in" report), and print a stray line to stderr.
_SERVER = """
import logging, sys, threading, time, warnings
from pathlib import Path
from licentia.services.server import main

port_file = Path(sys.argv[1])


class Finaliser:
    def __del__(self):
        raise ValueError("raised in a finaliser")


def provoke():
    while not (port_file.exists() and port_file.read_text().strip()):
        time.sleep(0.05)
    logging.getLogger("psycopg.pool").warning(
        "error connecting in %r: %s", "pool-1", "connection refused\\nIs the server running?"
    )
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("grpc._server").exception("Exception calling application")
    warnings.warn("a library's warning", RuntimeWarning)
    boom = threading.Thread(target=lambda: {}["missing"], name="boom")
    boom.start()
    boom.join()
    Finaliser()
    print("a stray line", file=sys.stderr, flush=True)
    Path(str(port_file) + ".done").write_text("done")


threading.Thread(target=provoke, daemon=True).start()
sys.exit(main(sys.argv[2:]))
"""


@needs_openssl
def test_every_stderr_line_of_the_server_is_one_json_object(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    cert, key = self_signed_certificate(tmp_path / "tls")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-c", _SERVER, str(port_file)),
            *("--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0"),
            *("--port-file", str(port_file), "--max-connections", "4"),
            *("--tls-cert", str(cert), "--tls-key", str(key)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: Path(f"{port_file}.done").exists() or proc.poll() is not None, 30)
        # Ten connections in the clear to a TLS port where four are allowed: gRPC's C core
        # writes each failed handshake to stderr itself.
        address = f"127.0.0.1:{port_file.read_text().strip()}"
        own = [("grpc.use_local_subchannel_pool", 1)]  # a connection per channel
        channels = [grpc.insecure_channel(address, options=own) for _ in range(10)]
        ready = [grpc.channel_ready_future(ch) for ch in channels]  # all connect at once
        deadline = time.monotonic() + 2
        for future in ready:
            with contextlib.suppress(grpc.FutureTimeoutError):
                future.result(timeout=max(0.0, deadline - time.monotonic()))
        for ch in channels:
            ch.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = err.splitlines()
    docs = [json.loads(line) for line in lines]  # each line, or the test fails here
    assert all(isinstance(d, dict) and {"ts", "level", "event"} <= set(d) for d in docs)
    by_event = {d["event"]: d for d in docs}
    assert "error connecting in 'pool-1'" in "".join(by_event)
    assert "ZeroDivisionError" in by_event["Exception calling application"]["traceback"]
    thread = by_event["thread.uncaught_exception"]
    assert thread["thread_name"] == "boom"
    assert "KeyError: 'missing'" in thread["traceback"]
    assert any("a library's warning" in e for e in by_event)
    assert "raised in a finaliser" in by_event["process.unraisable_exception"]["traceback"]
    assert "server.stopped" in by_event
    native = [d for d in docs if d["event"] == "native.stderr"]
    assert any("Handshake failed" in d["line"] for d in native), docs
    assert {"level": "warning", "line": "a stray line"}.items() <= native[0].items()
