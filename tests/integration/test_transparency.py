"""The public log over gRPC: every issuance, revocation and issuer-key event is in it, with
proofs anyone can check against a signed checkpoint. Since token v2 an entry about an
account is sealed to it: the tests read a holder's entries with her log key, as her audit
does; an outsider sees only tags, commitments and boxes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc  # type: ignore[import-untyped]
import pytest

from licentia import keys, merkle, methods, sealed
from licentia.keys import PublicKey
from licentia.request import request_payload
from licentia.token import parse_token
from licentia.v1 import licences_pb2, registry_pb2, transparency_pb2

from .exchange_harness import (
    PHOTO_SHA,
    Exchange,
    Party,
    approve_request,
    register_advertiser,
    register_holder,
    request_licence,
)
from .log_harness import checkpoint, entries, log_call, own_entries


def _licensed(ex: Exchange, handle: str = "alice") -> tuple[Party, Party, str]:
    holder, adv = ex.party(), ex.party()
    register_holder(holder, handle)
    register_advertiser(adv)
    req = request_licence(adv, holder.key.public.raw).request
    return holder, adv, approve_request(holder, req).licence.token


def test_a_licence_and_its_revocation_are_in_the_log_with_valid_proofs(ex: Exchange) -> None:
    holder, _, token = _licensed(ex)
    u = parse_token(token)
    licence_id = u.licence_id
    assert u.promise is not None
    cp = checkpoint(ex)
    logged = entries(ex)
    assert len(logged) == cp.size
    assert logged[0].WhichOneof("kind") == "issuer_key"  # the first key, at the first start
    # Nobody's licence is in clear; its holder finds it, at the index the token promises.
    assert all(e.WhichOneof("kind") in ("issuer_key", "sealed") for e in logged)
    assert token.encode() not in b"".join(e.SerializeToString() for e in logged)
    account = holder.key.public.raw
    assert own_entries(ex, account) == [(u.promise.index, transparency_pb2.LogEntry(licence=token))]

    proof = log_call(
        ex,
        "GetInclusionProof",
        transparency_pb2.GetInclusionProofRequest(licence_id=licence_id, tree_size=cp.size),
        transparency_pb2.GetInclusionProofResponse,
    )
    assert proof.index == u.promise.index
    found = transparency_pb2.LogEntry.FromString(proof.entry).sealed
    assert found.commitment == sealed.licence_commitment(token)
    entry = proof.entry
    assert merkle.verify_inclusion(entry, proof.index, cp.size, list(proof.proof), cp.root)
    assert not merkle.verify_inclusion(entry, proof.index ^ 1, cp.size, list(proof.proof), cp.root)

    holder.call(
        licences_pb2,
        "RevokeLicence",
        licences_pb2.RevokeLicenceRequest(licence_id=licence_id),
        licences_pb2.RevokeLicenceResponse,
    )
    later = checkpoint(ex)
    assert later.size == cp.size + 1
    consistency = log_call(
        ex,
        "GetConsistencyProof",
        transparency_pb2.GetConsistencyProofRequest(old_size=cp.size, new_size=later.size),
        transparency_pb2.GetConsistencyProofResponse,
    )
    assert merkle.verify_consistency(
        cp.size, later.size, cp.root, later.root, list(consistency.proof)
    )
    (last,) = entries(ex, cp.size)
    assert last.WhichOneof("kind") == "sealed"
    rev = own_entries(ex, account)[-1][1].revocation
    assert rev.licence_id == licence_id
    assert rev.cause == licences_pb2.TERMINATION_CAUSE_REVOKED
    # The holder's own signed call is in the log: anyone can check that they asked.
    signed = rev.request
    assert signed.method == methods.path(licences_pb2, "RevokeLicence")
    assert signed.key == holder.key.public.raw
    assert licences_pb2.RevokeLicenceRequest.FromString(signed.body).licence_id == licence_id
    payload = request_payload(signed.method, signed.body, signed.timestamp, signed.nonce)
    assert PublicKey(signed.key).verify(keys.REQUEST, payload, signed.signature)
    assert not PublicKey(signed.key).verify(keys.REQUEST, payload + b"x", signed.signature)


def test_erasure_revocations_carry_the_holders_erase_call(ex: Exchange) -> None:
    holder, _, token = _licensed(ex)
    holder.call(
        registry_pb2,
        "EraseAssets",
        registry_pb2.EraseAssetsRequest(sha256=[PHOTO_SHA]),
        registry_pb2.EraseAssetsResponse,
    )
    last = own_entries(ex, holder.key.public.raw)[-1][1].revocation
    assert last.licence_id == parse_token(token).licence_id
    assert last.cause == licences_pb2.TERMINATION_CAUSE_ERASED
    assert last.request.method == methods.path(registry_pb2, "EraseAssets")


def test_a_key_rotation_is_logged(ex: Exchange) -> None:
    before = checkpoint(ex)
    ex.app.deps.keyring.rotate(ex.app.deps.clock.now())
    after = entries(ex, before.size)
    assert [e.WhichOneof("kind") for e in after] == ["issuer_key", "issuer_key"]
    assert after[0].issuer_key.not_after > 0  # the old key's window closed
    assert after[1].issuer_key.not_after == 0  # the new current key


def test_the_log_refuses_bad_ranges_and_sizes(ex: Exchange) -> None:
    _licensed(ex)
    size = checkpoint(ex).size
    bad = [
        ("GetInclusionProof", transparency_pb2.GetInclusionProofRequest(index=size)),
        (
            "GetInclusionProof",
            transparency_pb2.GetInclusionProofRequest(index=0, tree_size=size + 1),
        ),
        (
            "GetConsistencyProof",
            transparency_pb2.GetConsistencyProofRequest(old_size=0, new_size=1),
        ),
        (
            "GetConsistencyProof",
            transparency_pb2.GetConsistencyProofRequest(old_size=2, new_size=1),
        ),
        (
            "GetConsistencyProof",
            transparency_pb2.GetConsistencyProofRequest(old_size=1, new_size=size + 1),
        ),
    ]
    for name, req in bad:
        resp_cls = (
            transparency_pb2.GetInclusionProofResponse
            if name == "GetInclusionProof"
            else transparency_pb2.GetConsistencyProofResponse
        )
        with pytest.raises(grpc.RpcError) as e:
            log_call(ex, name, req, resp_cls)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
    with pytest.raises(grpc.RpcError) as e:
        log_call(
            ex,
            "GetInclusionProof",
            transparency_pb2.GetInclusionProofRequest(licence_id=bytes(16)),
            transparency_pb2.GetInclusionProofResponse,
        )
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(entries(ex, 0, 10**9)) == size  # an end beyond the tree is capped


def test_proofs_verify_between_every_pair_of_sizes(ex: Exchange) -> None:
    for handle in ("alice", "bob", "carol"):
        _licensed(ex, handle)
    cp = checkpoint(ex)
    data = [e.SerializeToString(deterministic=True) for e in entries(ex)]
    roots = {n: merkle.reference_root(data[:n]) for n in range(1, cp.size + 1)}
    assert roots[cp.size] == cp.root
    for old in range(1, cp.size + 1):
        for new in range(old, cp.size + 1):
            proof = log_call(
                ex,
                "GetConsistencyProof",
                transparency_pb2.GetConsistencyProofRequest(old_size=old, new_size=new),
                transparency_pb2.GetConsistencyProofResponse,
            ).proof
            assert merkle.verify_consistency(old, new, roots[old], roots[new], list(proof))
        for i in range(old):
            inc = log_call(
                ex,
                "GetInclusionProof",
                transparency_pb2.GetInclusionProofRequest(index=i, tree_size=old),
                transparency_pb2.GetInclusionProofResponse,
            )
            assert merkle.verify_inclusion(data[i], i, old, list(inc.proof), roots[old])


def test_a_rewritten_entry_no_longer_matches_the_signed_root(ex: Exchange) -> None:
    _licensed(ex)
    cp = checkpoint(ex)
    db = sqlite3.connect(ex.data_dir / "licentia.db")
    forged = transparency_pb2.LogEntry(licence="lic1.rewritten").SerializeToString()
    db.execute("UPDATE log_entries SET entry = ? WHERE idx = 1", (forged,))
    db.commit()
    db.close()
    data = [e.SerializeToString(deterministic=True) for e in entries(ex)]
    recomputed = merkle.reference_root(data)
    assert recomputed != cp.root  # anyone who downloads the log sees it was rewritten


def test_the_server_prints_the_log_key_auditors_pin(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from licentia.services.server import main

    served = log_call(
        ex,
        "GetCheckpoint",
        transparency_pb2.GetCheckpointRequest(),
        transparency_pb2.GetCheckpointResponse,
    ).verifier_key
    assert main(["log-key", "--data-dir", str(ex.data_dir)]) == 0
    assert capsys.readouterr().out.strip() == served
    assert main(["log-key", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "no log key" in capsys.readouterr().err
