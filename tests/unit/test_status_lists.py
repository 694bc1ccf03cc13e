"""Status lists without a ceiling (docs/token-format.md §7): the lists a token names, the
snapshot's caps and order, the view's new and dropped lists, field 15 of the claims."""

from __future__ import annotations

import zlib
from dataclasses import replace

import pytest

from licentia import keys as K
from licentia.errors import LicentiaError, Reason
from licentia.examples import typical_claims, typical_token_v2
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
from licentia.status import (
    LIST_GRACE_SECONDS,
    MAX_STATUS_BITS,
    MAX_STATUS_LISTS,
    StatusEvent,
    StatusLists,
    StatusView,
    verify_snapshot,
)
from licentia.token import LicenceClaims, _signed_token, approve, parse_token
from licentia.v1 import licence_pb2, status_pb2
from licentia.verify import VerificationEngine

NOW = 1_800_000_000
DAY = 86_400
ISSUER, HOLDER, LICENSEE = (PrivateKey.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
KEYS = IssuerKeySet([IssuerKey(ISSUER.public, NOW - DAY)])


def _signed(snap: status_pb2.StatusListSnapshot) -> bytes:
    body = snap.SerializeToString(deterministic=True)
    return status_pb2.SignedStatusSnapshot(
        snapshot=body, signature=ISSUER.sign(K.STATUS_SNAPSHOT, body)
    ).SerializeToString(deterministic=True)


def _lists(*ids: int, bits: int = 0) -> list[status_pb2.StatusListBits]:
    empty = zlib.compress(bytes((bits + 7) // 8))
    return [
        status_pb2.StatusListBits(list_id=i, expires_at=NOW, bit_length=bits, bits_zlib=empty)
        for i in ids
    ]


def _snapshot(
    lists: list[status_pb2.StatusListBits], bit_length: int = 0, bits_zlib: bytes = b""
) -> bytes:
    return _signed(
        status_pb2.StatusListSnapshot(
            issuer_key_id=ISSUER.public.key_id,
            taken_at=NOW,
            lists=lists,
            bit_length=bit_length,
            bits_zlib=bits_zlib,
        )
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_snapshot(_lists(2, 1)), Reason.MALFORMED),  # out of order
        (_snapshot(_lists(1, 1)), Reason.MALFORMED),  # one list twice
        (_snapshot(_lists(1 << 63)), Reason.MALFORMED),  # an id no database holds
        (_snapshot(_lists(*range(MAX_STATUS_LISTS + 1))), Reason.TOO_LARGE),
        (_snapshot(_lists(1, bits=MAX_STATUS_BITS + 1)), Reason.TOO_LARGE),
        (_snapshot(_lists(*range(9), bits=MAX_STATUS_BITS)), Reason.TOO_LARGE),  # 2^29 + 2^26
        (_snapshot(_lists(1), bit_length=8), Reason.MALFORMED),  # the retired single list
        (_snapshot([], bits_zlib=zlib.compress(b"\x00")), Reason.MALFORMED),
    ],
    ids=["order", "twice", "id", "lists", "list-bits", "total-bits", "old-length", "old-bits"],
)
def test_a_snapshot_breaking_the_order_or_a_cap_is_refused(data: bytes, reason: Reason) -> None:
    with pytest.raises(LicentiaError) as e:
        verify_snapshot(data, KEYS)
    assert e.value.reason is reason


def test_the_view_tells_new_lists_from_dropped_ones_and_forgets_ended_lists() -> None:
    lists = StatusLists()
    lists.declare(1, NOW + DAY)
    lists.declare(3, NOW + 10 * DAY)
    lists.revoke(3, 5)
    view = StatusView(verify_snapshot(lists.snapshot(ISSUER, 4, NOW), KEYS), 60)
    assert view.list_ids == [1, 3]
    assert view.check(3, 5, NOW) is Reason.REVOKED
    assert view.check(1, 5, NOW) is None
    assert view.check(2, 0, NOW) is Reason.STATUS_LIST_DROPPED  # below the highest: dropped
    assert view.check(0, 0, NOW) is Reason.STATUS_LIST_DROPPED  # the legacy list, ended
    assert view.check(4, 0, NOW) is None  # above it: a list newer than the snapshot
    view.apply(StatusEvent(5, 2, 0, NOW + 1))  # a dropped list's event: ignored
    view.apply(StatusEvent(6, 4, 7, NOW + 2))  # a new list's: held from now on
    assert (view.sequence, view.list_ids) == (6, [1, 3, 4])
    assert view.check(2, 0, NOW + 2) is Reason.STATUS_LIST_DROPPED
    assert view.check(4, 7, NOW + 2) is Reason.REVOKED
    ended = NOW + DAY + LIST_GRACE_SECONDS
    assert view.check(1, 5, ended) is Reason.STATUS_STALE  # still held up to its grace
    assert view.check(1, 5, ended + 1) is Reason.STATUS_LIST_DROPPED
    view.heartbeat(6, ended + 1)
    assert view.list_ids == [3, 4]
    assert view.check(1, 5, ended + 1) is Reason.STATUS_LIST_DROPPED


def test_a_snapshot_omits_the_lists_ended_by_its_time() -> None:
    lists = StatusLists()
    lists.declare(1, NOW - LIST_GRACE_SECONDS - 1)
    lists.declare(2, NOW - LIST_GRACE_SECONDS)
    snap = verify_snapshot(lists.snapshot(ISSUER, 0, NOW), KEYS)
    assert [x.list_id for x in snap.lists] == [2]


def test_a_token_naming_a_dropped_list_is_denied_and_one_naming_a_live_list_allowed() -> None:
    token = typical_token_v2(ISSUER, HOLDER, LICENSEE, NOW)  # names list 1
    assert parse_token(token).status_list == 1
    lists = StatusLists()
    lists.declare(2, NOW + 100 * DAY)
    engine = VerificationEngine(
        KEYS, StatusView(verify_snapshot(lists.snapshot(ISSUER, 0, NOW), KEYS), 60)
    )
    assert engine.verify(token, None, NOW + 10).reasons == (Reason.STATUS_LIST_DROPPED,)
    lists.declare(1, NOW + 100 * DAY)
    engine.status = StatusView(verify_snapshot(lists.snapshot(ISSUER, 0, NOW), KEYS), 60)
    assert engine.verify(token, None, NOW + 10).allowed


def test_only_v2_claims_name_a_status_list() -> None:
    v1 = typical_claims(ISSUER, HOLDER, LICENSEE, NOW)
    with pytest.raises(LicentiaError) as e:
        replace(v1, status_list=1)
    assert e.value.reason is Reason.MALFORMED
    wire = v1.to_proto()
    wire.status_list = 1
    data = wire.SerializeToString(deterministic=True)
    for parse in (
        lambda: LicenceClaims.decode(data),
        lambda: parse_token(_signed_token(ISSUER, data, approve(HOLDER, data))),
    ):
        with pytest.raises(LicentiaError) as e:
            parse()
        assert e.value.reason is Reason.MALFORMED
    v2 = parse_token(typical_token_v2(ISSUER, HOLDER, LICENSEE, NOW)).claims
    assert LicenceClaims.decode(replace(v2, status_list=9).encode()).status_list == 9
    wire = licence_pb2.LicenceClaims.FromString(v2.encode())
    wire.status_list = 1 << 63
    with pytest.raises(LicentiaError) as e:
        LicenceClaims.decode(wire.SerializeToString(deterministic=True))
    assert e.value.reason is Reason.MALFORMED
