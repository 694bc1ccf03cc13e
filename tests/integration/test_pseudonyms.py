"""Pairwise holder keys at a real exchange (docs/token-format.md §1b): each advertiser sees
its own key of the holder, never her account or a device key; the wallet's devices (paired,
recovered) consent with the same one; a pseudonym that is not proven, or not free, is refused
and nothing is stored; the holder secret crosses a pairing sealed to the joined key alone."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from licentia import keys, pairwise, phrase
from licentia.clients.holder import ExchangeError, Holder
from licentia.clients.wallet import keystore
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey
from licentia.token import LicenceClaims, parse_token
from licentia.v1 import accounts_pb2, exchange_pb2, licences_pb2, records_pb2

from .exchange_harness import (
    Exchange,
    Party,
    register_advertiser,
    register_holder,
    registered,
    request_licence,
    revoke_licence,
)
from .wallet_harness import PASS, Wallet, set_up


def _licence(adv: Party, licence_id: bytes) -> records_pb2.LicenceRecord:
    return adv.call(
        licences_pb2,
        "GetLicence",
        licences_pb2.GetLicenceRequest(licence_id=licence_id),
        licences_pb2.GetLicenceResponse,
    ).licence


def _approve(
    holder: Party,
    request: records_pb2.LicenceRequest,
    key: PrivateKey,
    proof: bytes,
    *,
    signer: PrivateKey | None = None,
) -> exchange_pb2.ApproveRequestResponse:
    """Approve ``request`` consenting with ``key`` (the claims rebound to it, signed by
    ``signer``, ``key`` by default), with ``proof`` as its pseudonym proof."""
    claims = LicenceClaims.decode(request.claims)
    bound = dataclasses.replace(claims, holder=key.public).encode()
    return holder.call(
        exchange_pb2,
        "ApproveRequest",
        exchange_pb2.ApproveRequestRequest(
            request_id=request.request_id,
            holder_signature=(signer or key).sign(keys.CONSENT, bound),
            consent_key=key.public.raw,
            consent_key_proof=proof,
        ),
        exchange_pb2.ApproveRequestResponse,
    )


def _refused(reason: Reason, holder: Party, *args: object, **kw: object) -> None:
    with pytest.raises(ExchangeError) as e:
        _approve(holder, *args, **kw)  # type: ignore[arg-type]
    assert e.value.reason == reason, str(e.value)


def _state(p: Party, request_id: bytes) -> int:
    return int(
        p.call(
            exchange_pb2,
            "GetRequest",
            exchange_pb2.GetRequestRequest(request_id=request_id),
            exchange_pb2.GetRequestResponse,
        ).request.state
    )


@pytest.mark.parametrize("ex", ["sqlite", "postgres"], indirect=True)
def test_a_pseudonym_is_refused_unless_proven_and_free_and_then_names_the_holder_alone(
    ex: Exchange,
) -> None:
    holder, acme, _ = registered(ex)
    beta, bob = ex.party(), ex.party()
    register_advertiser(beta, "Beta Media")
    register_holder(bob, "bob")
    store = ex.app.deps.store
    account, acme_id, beta_id = (p.key.public.raw for p in (holder, acme, beta))
    secret = b"\x42" * 32
    key = pairwise.pairwise_key(secret, acme_id)
    proof = pairwise.pseudonym_proof(key, account, acme_id)
    asked = request_licence(acme, account).request

    # A proof for another licensee, or for another account, or a consent the pseudonym did
    # not sign: BAD_CONSENT. An account's key as the pseudonym: PSEUDONYM_TAKEN.
    _refused(
        Reason.BAD_CONSENT, holder, asked, key, pairwise.pseudonym_proof(key, account, beta_id)
    )
    _refused(
        Reason.BAD_CONSENT,
        holder,
        asked,
        key,
        pairwise.pseudonym_proof(key, bob.key.public.raw, acme_id),
    )
    _refused(Reason.BAD_CONSENT, holder, asked, key, proof, signer=holder.key)
    _refused(Reason.BAD_CONSENT, holder, asked, key, proof[:-1] + bytes([proof[-1] ^ 1]))
    for taken in (holder.key, bob.key, acme.key):
        _refused(
            Reason.PSEUDONYM_TAKEN,
            holder,
            asked,
            taken,
            pairwise.pseudonym_proof(taken, account, acme_id),
        )
    with pytest.raises(ExchangeError) as e:
        holder.call(
            exchange_pb2,
            "ApproveRequest",
            exchange_pb2.ApproveRequestRequest(
                request_id=asked.request_id,
                holder_signature=b"\x00" * 64,
                consent_key=key.public.raw[:31],
                consent_key_proof=proof,
            ),
            exchange_pb2.ApproveRequestResponse,
        )
    assert e.value.reason == Reason.INVALID_REQUEST
    # Nothing was stored: the request waits, no pseudonym, no licence.
    assert _state(holder, asked.request_id) == records_pb2.REQUEST_STATE_PENDING
    assert store.pseudonym(key.public.raw) is None
    assert store.licences_of(account, before_issued=1 << 62, limit=10) == []

    issued = _approve(holder, asked, key, proof).licence
    assert (issued.holder_key, issued.consent_key) == (account, key.public.raw)
    assert parse_token(issued.token).claims.holder == key.public
    assert store.pseudonym(key.public.raw) == (account, acme_id)
    # The advertiser sees the pseudonym, in the record and the token, never the account.
    seen = _licence(acme, issued.licence_id)
    assert seen.holder_key == seen.consent_key == key.public.raw != account
    assert parse_token(seen.token).holder_key == key.public.raw
    # The same key again for the same advertiser: the same pseudonym, recorded once.
    again = _approve(holder, request_licence(acme, account).request, key, proof).licence
    assert _licence(acme, again.licence_id).holder_key == key.public.raw
    # Not for another licensee (a proof that binds it to beta is still refused) ...
    for_beta = request_licence(beta, account).request
    _refused(
        Reason.PSEUDONYM_TAKEN,
        holder,
        for_beta,
        key,
        pairwise.pseudonym_proof(key, account, beta_id),
    )
    assert store.pseudonym(key.public.raw) == (account, acme_id)
    # ... nor for another account, even with a proof made with the key.
    bobs = request_licence(acme, bob.key.public.raw).request
    _refused(
        Reason.PSEUDONYM_TAKEN,
        bob,
        bobs,
        key,
        pairwise.pseudonym_proof(key, bob.key.public.raw, acme_id),
    )
    assert _state(bob, bobs.request_id) == records_pb2.REQUEST_STATE_PENDING
    # The termination receipt names the key the licence names.
    receipt = records_pb2.TerminationReceipt.FromString(
        revoke_licence(holder, issued.licence_id).receipt.receipt
    )
    assert receipt.holder_key == key.public.raw


def test_the_holder_secret_crosses_a_pairing_sealed_to_the_joined_key_alone(
    ex: Exchange,
) -> None:
    holder, _, _ = registered(ex)
    tablet, thief = PrivateKey.generate(), PrivateKey.generate()
    secret = b"\x24" * 32
    with (
        Holder(ex.channel(), holder.key) as old,
        Holder(ex.channel(), tablet) as new,
        Holder(ex.channel(), thief) as other,
    ):
        code = old.start_pairing().code
        sealed = pairwise.seal_secret(secret, tablet.public.raw, holder.key, code)

        def seal(blob: bytes) -> None:
            holder.call(
                accounts_pb2,
                "SealPairing",
                accounts_pb2.SealPairingRequest(code=code, sealed_secret=blob),
                accounts_pb2.SealPairingResponse,
            )

        with pytest.raises(ExchangeError) as e:  # nobody joined yet
            seal(sealed)
        assert e.value.reason == Reason.NOT_FOUND
        new.join_pairing(code, "tablet")
        with pytest.raises(LicentiaError) as refused:  # joined, not yet in the account
            old.seal_pairing(code, secret)
        assert refused.value.reason == Reason.KEY_SET_UNAUTHORISED
        with pytest.raises(LicentiaError) as refused:  # not the key the person confirmed
            old.approve_pairing(code, thief.public.raw)
        assert refused.value.reason == Reason.KEY_SET_UNAUTHORISED
        old.approve_pairing(code, tablet.public.raw)
        for size in (0, 175, 177, 4096):  # only a sealed, signed 32-byte secret is relayed
            with pytest.raises(ExchangeError) as e:
                seal(b"\x01" * size)
            assert e.value.reason == Reason.INVALID_REQUEST
        assert new.pairing(code).sealed_secret == b""
        before = old.pairing(code).expires_at
        sealed_until = old.seal_pairing(code, secret).expires_at
        assert sealed_until > before + 24 * 3600  # kept for the joined device to fetch it
        assert old.pairing(code).expires_at == sealed_until
        assert old.pairing(code).sealed_secret == b""  # not to the device that sealed it
        assert new.pairing_secret(code) == secret
        # A secret the relaying exchange seals to the tablet itself (it cannot sign as a
        # device of the account) is refused by the tablet: here the thief's key signs it.
        seal(pairwise.seal_secret(b"\x66" * 32, tablet.public.raw, thief, code))
        with pytest.raises(LicentiaError) as refused:
            new.pairing_secret(code)
        assert refused.value.reason == Reason.BAD_SIGNATURE
        with pytest.raises(ExchangeError):  # nor to a key of no account
            other.pairing(code)


def test_two_advertisers_see_two_keys_and_every_device_of_the_holder_the_same_one(
    tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    laptop = Wallet(tmp_path / "laptop", ex.address, capsys)
    words = laptop.json("init", "--yes")["recovery_phrase"]
    set_up(laptop, tmp_path)
    account = keystore.info(laptop.path).public.raw
    acme, beta = ex.party(), ex.party()
    register_advertiser(acme, "Acme Ads")
    register_advertiser(beta, "Beta Media")

    def approved(w: Wallet, adv: Party) -> bytes:
        """``w`` approves a new request of ``adv``; the holder key ``adv`` sees."""
        asked = request_licence(adv, account).request
        code, _, err = w("approve", asked.request_id.hex(), "--yes")
        assert code == 0, err
        lid = next(
            bytes.fromhex(x["licence_id"])
            for x in w.json("licences")
            if x["request_id"] == asked.request_id.hex()
        )
        seen = _licence(adv, lid)
        assert seen.holder_key == seen.consent_key == parse_token(seen.token).holder_key
        return seen.holder_key

    to_acme, to_beta = approved(laptop, acme), approved(laptop, beta)
    assert to_acme != to_beta
    assert approved(laptop, acme) == to_acme  # the same advertiser: the same pseudonym
    secret = pairwise.holder_secret_from_entropy(phrase.parse_phrase(words))
    assert to_acme == pairwise.pairwise_key(secret, acme.key.public.raw).public.raw
    shown = laptop.json("licences")[0]
    code, out, _ = laptop("show", shown["licence_id"])
    assert code == 0
    assert "pseudonym for this licensee" in out

    # A second device, paired: it receives the secret sealed, then consents with the same key.
    phone = Wallet(tmp_path / "phone", ex.address, capsys)
    pairing = laptop.json("devices", "add", "--no-wait")["code"]
    phone.json("join", pairing, "--name", "phone")
    assert "pairing" in json.loads(phone.path.read_text())
    assert laptop("devices", "approve", pairing, "--yes")[0] == 0
    assert approved(phone, acme) == to_acme
    assert "pairing" not in json.loads(phone.path.read_text())  # stored in its box now
    assert keystore.unlock(phone.path, PASS).holder_secret == secret

    # A wallet recovered from the phrase on a new machine: the same keys again.
    new = Wallet(tmp_path / "new", ex.address, capsys)
    phrase_file = tmp_path / "words.txt"
    phrase_file.write_text(words + "\n")
    assert new("recover", "--phrase-file", str(phrase_file), "--retired")[0] == 0
    assert approved(new, beta) == to_beta

    # No account key, current or removed, is ever what an advertiser sees.
    every_key = {account}
    for w in (laptop, phone, new):
        every_key.add(keystore.info(w.path).public.raw)
    with Holder(ex.channel(), keystore.open_wallet(new.path, PASS)) as h:
        found = h.key_set_answer()
        every_key |= {k.public_key for k in found.keys} | {k.public_key for k in found.removed}
    assert not {to_acme, to_beta} & every_key


def test_a_device_added_without_the_secret_approves_nothing_until_it_is_sent(
    tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    laptop = Wallet(tmp_path / "laptop", ex.address, capsys)
    laptop.json("init", "--yes")
    set_up(laptop, tmp_path)
    account = keystore.info(laptop.path).public.raw
    acme = ex.party()
    register_advertiser(acme)
    phone = Wallet(tmp_path / "phone", ex.address, capsys)
    code = laptop.json("devices", "add", "--no-wait")["code"]
    phone.json("join", code, "--name", "phone")
    with Holder(ex.channel(), keystore.open_wallet(laptop.path, PASS)) as h:
        h.approve_pairing(code)  # added, but no secret left for it (as if the laptop died)
    asked = request_licence(acme, account).request
    code_, _, err = phone("approve", asked.request_id.hex(), "--yes")
    assert code_ == 1
    assert "has not received your holder secret" in err
    assert f"devices approve {code}" in err
    assert _state(acme, asked.request_id) == records_pb2.REQUEST_STATE_PENDING
    # Approving again on the laptop sends the secret only (the device is in already).
    code_, out, err = laptop("devices", "approve", code, "--yes")
    assert code_ == 0, err
    assert "sent it your holder secret" in out
    assert phone("approve", asked.request_id.hex(), "--yes")[0] == 0
    laptop_secret = keystore.unlock(laptop.path, PASS).holder_secret
    assert keystore.unlock(phone.path, PASS).holder_secret == laptop_secret
