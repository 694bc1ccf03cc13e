"""The caps per client address: the stream slots' share, the gateway's counts, and their
settings (tests/integration/test_abuse_limits.py proves them on a real server)."""

from __future__ import annotations

from typing import Any

import pytest

from licentia.errors import LicentiaError, Reason
from licentia.services.deps import Settings
from licentia.services.forward import _metadata
from licentia.services.http_limits import PerClient
from licentia.services.rpc import FORWARDED_FOR, Method, StreamLimit, client_of


class _Context:
    def __init__(self, peer: Any, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._peer = peer
        self._metadata = metadata

    def peer(self) -> Any:
        return self._peer

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


def test_a_client_is_its_peer_without_the_port() -> None:
    assert client_of(_Context("ipv4:10.0.0.1:50412")) == "ipv4:10.0.0.1"
    assert client_of(_Context("ipv6:[::1]:50412")) == "ipv6:[::1]"
    # A Unix-socket peer is a worker process relaying (the private socket): the client is
    # the one it names, or none (not counted) when it names none.
    relayed = _Context("unix:/run/licentia.sock", ((FORWARDED_FOR, "ipv4:10.0.0.7"),))
    assert client_of(relayed) == "ipv4:10.0.0.7"
    assert client_of(_Context("unix:/run/licentia.sock")) == ""
    # Over TCP the metadata is the client's own word: never taken.
    forged = _Context("ipv4:10.0.0.1:50412", ((FORWARDED_FOR, "ipv4:10.9.9.9"),))
    assert client_of(forged) == "ipv4:10.0.0.1"
    assert client_of(_Context(None)) == ""
    assert client_of(object()) == ""  # a context that does not say: not counted


def test_one_client_holds_its_share_of_the_slots_and_gives_them_back() -> None:
    limit = StreamLimit(4)  # 2 per client by default
    assert limit.per_client == 2
    for _ in range(2):
        limit.acquire("ipv4:10.0.0.1")
    with pytest.raises(LicentiaError) as share:
        limit.acquire("ipv4:10.0.0.1")
    assert share.value.reason is Reason.BUSY
    assert "this address already has 2 open streams" in str(share.value)
    limit.acquire("ipv4:10.0.0.2")
    limit.acquire("")  # unknown: counted against the limit only
    with pytest.raises(LicentiaError, match="too many open streams"):
        limit.acquire("ipv4:10.0.0.3")  # all 4 taken: the refusal names the whole server
    limit.release("ipv4:10.0.0.1")
    limit.acquire("ipv4:10.0.0.1")  # its share is back, and the slot with it
    assert StreamLimit(1).per_client == 1
    assert StreamLimit(10, per_client=10).per_client == 10
    with pytest.raises(ValueError, match="per-client"):
        StreamLimit(4, per_client=-1)


def test_per_client_counts_cap_each_address_alone() -> None:
    counts = PerClient(2)
    assert counts.take("a")
    assert counts.take("a")
    assert not counts.take("a")  # nothing taken
    assert counts.held("a") == 2
    assert counts.take("b")
    counts.give("a")
    assert counts.take("a")
    for _ in range(3):
        counts.give("b")  # more than taken: never negative
    assert counts.held("b") == 0


def test_the_new_settings_refuse_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="header"):
        Settings(upload_header_seconds=0)
    with pytest.raises(ValueError, match="streams per client"):
        Settings(max_streams_per_client=-1)
    with pytest.raises(ValueError, match="first_message_seconds"):
        Method(lambda request, call: request, first_message_seconds=0)


def test_a_worker_relays_the_clients_address_never_one_the_client_sent() -> None:
    forged = _Context(
        "ipv4:10.0.0.1:50412", (("x-licentia-key", "k"), (FORWARDED_FOR, "ipv4:10.9.9.9"))
    )
    assert _metadata(forged) == [("x-licentia-key", "k"), (FORWARDED_FOR, "ipv4:10.0.0.1")]
