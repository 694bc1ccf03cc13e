"""``licentia-server --metrics``: a real server of two processes, scraped over HTTP.

The exposition is parsed with prometheus-client's own parser; the counts are those of the
calls made, whichever process answered them (the worker's counts reach the scrape).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc  # type: ignore[import-untyped]
import pytest
from prometheus_client.parser import text_string_to_metric_families

from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.methods import path
from licentia.services.errors import STATUS_OF
from licentia.services.runtime import client_channel
from licentia.services.server import main as server_main
from licentia.token import parse_token
from licentia.v1 import verification_pb2

from .exchange_harness import (
    ExchangeError,
    Party,
    ServerProcess,
    SignedChannel,
    add_standing_rule,
    fund,
    issue_licence,
    operator_party,
    photo_rule,
    photo_use,
    register_advertiser,
    register_holder,
    register_platform,
    request_licence,
    revoke_licence,
    secret_in,
    server_process,
    verify,
    wait_for,
)

VERIFY = path(verification_pb2, "Verify")
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
#: Each its own TCP connection: all of them landing on one process has odds of 2**-15.
CONNECTIONS = 16


def _scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape: (name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://{server.printed['metrics']}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    flags = ("--processes", "2", "--metrics", "127.0.0.1:0", "--heartbeat-seconds", "0.5")
    with server_process(tmp_path, *flags) as running:
        yield running


def test_a_scrape_counts_every_process_calls_issuances_revocations_and_the_feed(
    server: ServerProcess,
) -> None:
    secret = secret_in(server.data)
    main_channel = client_channel(server.address)
    channels = [
        grpc.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(CONNECTIONS)
    ]
    try:

        def party(channel: grpc.Channel, key: PrivateKey | None = None) -> Party:
            key = key or PrivateKey.generate()
            return Party(key, SignedChannel(channel, key), secret=secret)

        holder, adv, platform = party(main_channel), party(main_channel), party(main_channel)
        register_holder(holder)
        register_advertiser(adv)
        fund(operator_party(main_channel, server.data), adv.key.public.raw)
        register_platform(platform)
        token = issue_licence(holder, adv).token
        issue_licence(holder, adv)
        # A third licence, issued at once under the holder's standing rule.
        add_standing_rule(holder, photo_rule(holder.key.public, int(time.time())))
        assert request_licence(adv, holder.key.public.raw).licence.token
        before = _scrape(server)
        for ch in channels:  # spread over both processes by the kernel
            assert verify(party(ch, platform.key), adv, token, photo_use()).allowed
        revoke_licence(holder, parse_token(token).licence_id)
        wait_for(lambda: _scrape(server)[("licentia_feed_max_lag_events", ())] == 0, 5)
        after = _scrape(server)
    finally:
        for ch in (main_channel, *channels):
            ch.close()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    # Every Verify is counted once, with its latency, whichever process answered it (the
    # worker answered some: its log says so).
    assert delta("licentia_rpc_calls_total", method=VERIFY, code="OK") == CONNECTIONS
    assert delta("licentia_rpc_duration_seconds_count", method=VERIFY) == CONNECTIONS
    lines = [json.loads(x) for x in server.log.read_text().splitlines() if x.startswith("{")]
    assert {d.get("worker") for d in lines if d.get("method") == VERIFY} == {None, 1}
    assert after[("licentia_licences_issued_total", ())] == 3  # the standing rule's too
    assert after[("licentia_revocations_total", (("cause", "revoked"),))] == 1
    assert after[("licentia_store_transaction_seconds_count", ())] >= 3
    # The worker follows the first process's feed: one subscriber at least, none behind,
    # and the revocation was delivered to it.
    assert after[("licentia_feed_subscribers", ())] >= 1
    assert after[("licentia_feed_lag_events_gcount", ())] >= 1
    assert after[("licentia_feed_delivery_seconds_count", ())] >= 1
    assert after[("licentia_rpc_open_streams", ())] >= 1
    # File descriptors: the first process's (process collector) and the worker's.
    assert after[("process_open_fds", ())] > 0
    assert after[("licentia_worker_open_fds", (("worker", "1"),))] > 0
    # A refused call is counted under its status code.
    stranger = client_channel(server.address)
    try:
        with pytest.raises(ExchangeError) as e:
            verify(Party(holder.key, SignedChannel(stranger, holder.key)), adv, token, photo_use())
    finally:
        stranger.close()
    assert e.value.reason == Reason.NOT_OWNER
    refused = _scrape(server)
    code = STATUS_OF[Reason.NOT_OWNER].name
    assert refused[("licentia_rpc_calls_total", (("code", code), ("method", VERIFY)))] == 1
    # docs/operations.md lists every metric the exchange exports, and no other.
    documented = set(re.findall(r"^\| `(licentia_[a-z_]+)", OPERATIONS.read_text(), re.M))
    exported = {
        re.sub(r"_(total|count|sum|bucket|gcount|gsum)$", "", name)
        for name, _ in refused
        if name.startswith("licentia_")
    }
    assert {re.sub(r"_total$", "", d) for d in documented} == exported


@pytest.mark.parametrize(
    ("address", "says"),
    [("127.0.0.1", "--metrics must be HOST:PORT"), ("127.0.0.1:99999", "--metrics must be")],
)
def test_a_bad_metrics_address_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], address: str, says: str
) -> None:
    assert server_main(["--data-dir", str(tmp_path / "d"), "--metrics", address]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_a_metrics_port_in_use_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["--data-dir", str(tmp_path / "d"), "--metrics", f"127.0.0.1:{port}"]
        assert server_main([*argv, "--listen", "127.0.0.1:0", "--processes", "1"]) == 2
    assert f"--metrics 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    # Nothing is left for the processes started later to inherit.
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert "LICENTIA_METRICS_DIR" not in os.environ
