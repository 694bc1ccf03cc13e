"""The holder SDK, both flavours, against a real exchange on 127.0.0.1:0: register, declare,
set terms, answer requests with the consent signature, revoke with a signed receipt, standing
rules, accesses, money, export and erasure, the exchange's reasons as ``ExchangeError``; and
the README's holder example, which is the package docstring's."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

import licentia.clients.holder as holder_pkg
from licentia import keys
from licentia.clients.auditor.audit import Auditor
from licentia.clients.auditor.state import AuditState
from licentia.clients.holder import AsyncHolder, ExchangeError, Holder, standing_rule
from licentia.clients.logcheck import LogKey
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey
from licentia.token import Approval, LicenceClaims, parse_token
from licentia.v1 import exchange_pb2, ledger_pb2, licences_pb2, records_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from .exchange_harness import (
    DAY,
    PHOTO,
    PHOTO_SHA,
    Exchange,
    Party,
    ad_scope,
    offer_refs,
    register_advertiser,
    request_licence,
)

ROOT = Path(__file__).resolve().parents[2]
TERMS: dict[str, Any] = {
    "categories": [DataCategory.IMAGE],
    "purposes": [Purpose.ADVERTISING],
    "refused": [Purpose.POLITICAL_CAMPAIGN],
    "media": [Medium.ONLINE],
    "territories": ["fr"],
    "price_per_day": 100,
}


@pytest.fixture
def adv(ex: Exchange) -> Party:
    """A registered, funded advertiser (through the harness)."""
    party = ex.party()
    register_advertiser(party)
    return party


def _offer(me: Holder) -> None:
    me.register("ada", "Ada")
    me.declare_asset(DataCategory.IMAGE, PHOTO, "portrait", upload=True)
    me.set_terms(**TERMS)


def test_a_holder_offers_answers_and_revokes(ex: Exchange, adv: Party) -> None:
    with Holder.connect(ex.address, PrivateKey.generate()) as me:
        profile = me.register("ada", "Ada")
        assert (profile.handle, profile.display_name) == ("ada", "Ada")
        asset = me.declare_asset(DataCategory.IMAGE, PHOTO, "portrait", upload=True)
        assert (asset.sha256, asset.has_content) == (PHOTO_SHA, True)
        digest_only = me.declare_asset(DataCategory.VOICE, b"a voice", "voice")
        assert not digest_only.has_content
        assert {a.label for a in me.assets()} == {"portrait", "voice"}
        assert me.terms() is None
        terms = me.set_terms(**TERMS, exclusive_multiplier=2.5)
        assert list(terms.territories) == ["FR"]
        assert (terms.currency, terms.exclusivity_multiplier_bps) == ("EUR", 25_000)
        assert terms.max_term_seconds == 365 * DAY
        assert me.terms() == terms

        assert me.set_objection(True).objecting
        with pytest.raises(ExchangeError) as refused:
            request_licence(adv, me.public_key.raw)
        assert refused.value.reason == Reason.OPTED_OUT
        assert not me.set_objection(False).objecting

        asked = request_licence(adv, me.public_key.raw).request
        (pending,) = me.inbox()
        assert pending.request_id == asked.request_id
        licence = me.approve(pending)
        assert parse_token(licence.token).holder_key == me.public_key.raw
        assert me.inbox() == []
        assert [r.state for r in me.inbox(include_answered=True)] == [
            records_pb2.REQUEST_STATE_ISSUED
        ]
        assert [x.licence_id for x in me.licences()] == [licence.licence_id]
        assert me.licence(licence.licence_id) == licence

        other = request_licence(adv, me.public_key.raw, days=10).request
        declined = me.decline(other.request_id, "not this one")
        assert declined.state == records_pb2.REQUEST_STATE_DECLINED

        adv.call(
            licences_pb2,
            "FetchAsset",
            licences_pb2.FetchAssetRequest(licence_id=licence.licence_id, sha256=PHOTO_SHA),
            licences_pb2.FetchAssetResponse,
        )
        (access,) = me.accesses()
        assert (access.licence_id, access.licensee_key) == (licence.licence_id, adv.key.public.raw)

        done = me.revoke(licence.licence_id)
        assert done.licence.state == records_pb2.LICENCE_STATE_REVOKED
        assert done.receipt.licence_id == licence.licence_id
        assert done.receipt.revoked_at > 0
        assert done.signed.signature
        again = me.revoke(licence.licence_id)  # revoking twice is harmless: the same receipt
        assert again.receipt == done.receipt


def test_money_export_and_erasure(instant_ex: Exchange) -> None:
    ex = instant_ex
    adv = ex.party()
    register_advertiser(adv)
    with Holder.connect(ex.address, PrivateKey.generate()) as me:
        _offer(me)
        request_licence(adv, me.public_key.raw)
        (pending,) = me.inbox()  # her view: the claims name her key
        me.approve(pending)
        statement = me.statement(page_size=10)
        assert statement.currency == "EUR"
        assert statement.pending_minor + statement.total_minor > 0
        # This exchange has no payout delay: the destination is usable at once.
        added = me.add_payout_destination("IBAN FR76")
        assert added.state == ledger_pb2.PAYOUT_DESTINATION_STATE_CONFIRMED
        with pytest.raises(ExchangeError) as poor:
            me.withdraw(10**9, "IBAN FR76", holder_pkg.new_idempotency_key())
        assert poor.value.reason == Reason.INSUFFICIENT_FUNDS
        exported = me.export()
        assert exported.profile.handle == "ada"
        erased = me.erase()
        assert erased.erased == 1
        assert len(erased.revoked_licence_ids) == 1
        assert me.assets() == []


@pytest.mark.parametrize("ex", ["sqlite", "postgres"], indirect=True)
def test_payout_destinations_wait_out_the_delay_on_either_store(ex: Exchange) -> None:
    """The default delay (72 hours): a new destination is pending, in the inbox's notices,
    refused by a withdrawal, and gone once cancelled; on SQLite and PostgreSQL alike."""
    with Holder.connect(ex.address, PrivateKey.generate()) as me:
        me.register("ada")
        added = me.add_payout_destination("IBAN FR76 9")
        assert added.usable_at - added.added_at == 72 * 3600
        assert me.add_payout_destination("IBAN FR76 9") == added
        (notice,) = me.notices()
        assert (notice.kind, notice.subject) == (
            records_pb2.NOTICE_KIND_PAYOUT_DESTINATION_ADDED,
            "IBAN FR76 9",
        )
        for reference, reason in (
            ("IBAN FR76 9", Reason.PAYOUT_DESTINATION_PENDING),
            ("IBAN FR76 8", Reason.PAYOUT_DESTINATION_UNKNOWN),
        ):
            with pytest.raises(ExchangeError) as refused:
                me.withdraw(1, reference, holder_pkg.new_idempotency_key())
            assert refused.value.reason == reason
        assert me.cancel_payout_destination("IBAN FR76 9").cancelled_at
        assert me.notices() == []
        with pytest.raises(ExchangeError) as missing:
            me.cancel_payout_destination("IBAN FR76 9")
        assert missing.value.reason == Reason.NOT_FOUND
        assert [d.state for d in me.list_payout_destinations()] == [
            ledger_pb2.PAYOUT_DESTINATION_STATE_CANCELLED
        ]


def test_standing_rules_approve_for_the_holder(ex: Exchange, adv: Party) -> None:
    with Holder.connect(ex.address, PrivateKey.generate()) as me:
        _offer(me)
        now = int(time.time())
        signed = standing_rule(
            me.key,
            categories=[DataCategory.IMAGE],
            purposes=[Purpose.ADVERTISING],
            media=[Medium.ONLINE],
            territories=["FR"],
            assets=[PHOTO_SHA],
            not_before=now,
            not_after=now + 90 * DAY,
            max_term_seconds=30 * DAY,
            min_price_per_day=100,
            licensees=[adv.key.public],
        )
        record = me.add_standing_rule(signed)
        assert record.consent.rule == signed.consent.rule
        asked = request_licence(adv, me.public_key.raw).request
        assert asked.state == records_pb2.REQUEST_STATE_ISSUED  # nobody was asked
        (listed,) = me.standing_rules()
        assert not listed.withdrawn_at
        assert me.withdraw_standing_rule(signed.rule.rule_id).withdrawn_at
        assert request_licence(adv, me.public_key.raw).request.state == (
            records_pb2.REQUEST_STATE_PENDING
        )
        with pytest.raises(LicentiaError) as sensitive:
            standing_rule(
                me.key,
                categories=[DataCategory.IMAGE],
                purposes=[Purpose.POLITICAL_CAMPAIGN],
                media=[Medium.ONLINE],
                territories=["FR"],
                assets=[PHOTO_SHA],
                not_before=now,
                not_after=now + DAY,
                max_term_seconds=DAY,
                min_price_per_day=100,
            )
        assert sensitive.value.reason == Reason.SENSITIVE_USE_NEEDS_APPROVAL


def test_errors_are_the_exchanges_reasons_and_nothing_foreign_is_signed(
    ex: Exchange, adv: Party
) -> None:
    with Holder.connect(ex.address, PrivateKey.generate()) as stranger:
        with pytest.raises(ExchangeError) as unknown:
            stranger.inbox()
        assert unknown.value.reason == Reason.UNKNOWN_KEY
    with Holder.connect(ex.address, PrivateKey.generate()) as me:
        _offer(me)
        with pytest.raises(ExchangeError) as missing:
            me.licence(bytes(16))
        assert missing.value.reason == Reason.NOT_FOUND
        request_licence(adv, me.public_key.raw)
        (pending,) = me.inbox()  # her view: the claims name her key
        with Holder(ex.channel(), PrivateKey.generate()) as other:
            with pytest.raises(LicentiaError) as foreign:
                other.approve(pending)  # claims for another key: refused before any call
            assert foreign.value.reason == Reason.NOT_OWNER
        # Her view names her account; the advertiser's named her by its reference only.
        expected = records_pb2.LicenceRequest()
        expected.CopyFrom(pending)
        expected.holder_key, expected.offer_ref = me.public_key.raw, b""
        assert me.inbox() == [expected]
        assert me.log().checkpoint().note


def test_the_asyncio_holder_has_the_same_methods(ex: Exchange, adv: Party) -> None:
    async def run() -> None:
        async with AsyncHolder.connect(ex.address, PrivateKey.generate()) as me:
            await me.register("ada")
            await me.declare_asset(DataCategory.IMAGE, PHOTO, "portrait", upload=True)
            assert (await me.set_terms(**TERMS)).price_per_day_minor == 100
            assert await me.terms() is not None
            asked = await asyncio.to_thread(request_licence, adv, me.public_key.raw)
            (pending,) = await me.inbox()
            assert pending.request_id == asked.request.request_id
            licence = await me.approve(pending)
            assert [x.licence_id for x in await me.licences()] == [licence.licence_id]
            done = await me.revoke(licence.licence_id)
            assert done.receipt.licence_id == licence.licence_id
            assert (await me.statement()).currency == "EUR"
            with pytest.raises(ExchangeError) as missing:
                await me.licence(bytes(16))
            assert missing.value.reason == Reason.NOT_FOUND
            added = await me.add_payout_destination("IBAN FR76 1")
            assert added.state == ledger_pb2.PAYOUT_DESTINATION_STATE_PENDING
            assert [n.subject for n in await me.notices()] == ["IBAN FR76 1"]
            with pytest.raises(ExchangeError) as pending_one:
                await me.withdraw(1, "IBAN FR76 1", holder_pkg.new_idempotency_key())
            assert pending_one.value.reason == Reason.PAYOUT_DESTINATION_PENDING
            cancelled = await me.cancel_payout_destination("IBAN FR76 1")
            assert cancelled.state == ledger_pb2.PAYOUT_DESTINATION_STATE_CANCELLED
            assert await me.list_payout_destinations() == [cancelled]
            assert await me.notices() == []

    asyncio.run(run())


def _pending(me: Holder, asked: exchange_pb2.RequestLicenceResponse) -> records_pb2.LicenceRequest:
    """The request as the holder's inbox shows it (naming her key, unlike the advertiser's)."""
    return next(r for r in me.inbox() if r.request_id == asked.request.request_id)


def test_a_holder_finds_every_licence_in_her_name_from_the_log_alone(
    ex: Exchange, adv: Party, tmp_path: Path
) -> None:
    """Everything about Ada is sealed in the public log: two licences she approved, two a
    standing rule of hers issued (the rule since withdrawn), a revocation, a change of her
    key set, and the erasure of her photo (ending her three other licences: its call names
    the plain digest, her licences salted ones). Her audit (the auditor's holder mode with
    her log key from GetLogKey and her standing rules) finds all of them from the log
    alone: every licence the exchange lists for her, as many entries as it counts, none of
    Bob's. The independent auditor
    sees only sealed entries."""
    with (
        Holder.connect(ex.address, PrivateKey.generate()) as me,
        Holder.connect(ex.address, PrivateKey.generate()) as bob,
    ):
        _offer(me)
        bob.register("bob")
        bob.declare_asset(DataCategory.IMAGE, PHOTO, "portrait")
        bob.set_terms(**TERMS)
        approved = [me.approve(_pending(me, request_licence(adv, me.account))) for _ in "ab"]
        now = int(time.time())
        rule = standing_rule(
            me.key,
            categories=[DataCategory.IMAGE],
            purposes=[Purpose.ADVERTISING],
            media=[Medium.ONLINE],
            territories=["FR"],
            assets=[PHOTO_SHA],
            not_before=now - 60,
            not_after=now + 90 * DAY,
            max_term_seconds=30 * DAY,
            min_price_per_day=100,
        )
        me.add_standing_rule(rule)
        auto = [request_licence(adv, me.account).licence for _ in "ab"]
        assert all(x.token for x in auto)  # issued under the rule, nobody asked
        me.withdraw_standing_rule(rule.rule.rule_id)
        me.revoke(approved[0].licence_id)
        me.add_device(PrivateKey.generate(), "phone")
        me.erase([PHOTO_SHA])
        theirs = bob.approve(_pending(bob, request_licence(adv, bob.account)))
        bob.revoke(theirs.licence_id)

        log = me.log()
        key = LogKey.parse(log.checkpoint().advertised_key)
        stated = me.log_key()
        assert stated.entries == 9
        state = AuditState.open(tmp_path / "hers")
        try:
            report = Auditor(
                log,
                key,
                state,
                365 * DAY,
                holder=me.public_key.raw,
                sealed_key=stated.log_key,
                rules=me.standing_rules(),
            ).run()
            assert report.ok, report.problems
            assert report.sealed_found == stated.entries
            new = report.new
            assert (new.licences, new.revocations, new.key_set_changes) == (4, 4, 1)
            listed = [x.licence_id for x in me.licences()]
            assert sorted(listed) == sorted(x.licence_id for x in [*approved, *auto])
            assert all(state.licence(lid) is not None for lid in listed)
            assert state.licence(theirs.licence_id) is None
        finally:
            state.close()
        state = AuditState.open(tmp_path / "public")
        try:
            public = Auditor(log, key, state, 365 * DAY).run()
        finally:
            state.close()
        assert public.ok, public.problems
        assert (public.new.licences, public.new.sealed) == (0, 11)


# -- the example in the README and the package docstring ---------------------------------------


def _example(text: str) -> str:
    """The first Python block that imports the holder SDK."""
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    return next(b for b in blocks if "licentia.clients.holder import" in b)


def test_the_readme_example_is_the_docstrings_and_runs(
    ex: Exchange, adv: Party, capsys: pytest.CaptureFixture[str]
) -> None:
    example = _example(holder_pkg.__doc__ or "")
    assert example == _example((ROOT / "README.md").read_text(encoding="utf-8"))
    assert example.count('"localhost:7700"') == 1
    asked: list[bytes] = []
    set_terms = Holder.set_terms

    def then_asked(self: Holder, **kw: Any) -> records_pb2.Terms:
        """Set the terms; an advertiser then asks for the photo the example declared."""
        terms = set_terms(self, **kw)
        now = int(time.time())
        account = self.account
        resp = adv.call(
            exchange_pb2,
            "RequestLicence",
            exchange_pb2.RequestLicenceRequest(
                offer_ref=offer_refs(adv, account)[0],
                asset_refs=offer_refs(adv, account, [hashlib.sha256(b"my photo").digest()])[1],
                scope=ad_scope(),
                not_before=now,
                not_after=now + 30 * DAY,
                offered_price_minor=30 * terms.price_per_day_minor,
            ),
            exchange_pb2.RequestLicenceResponse,
        )
        asked.append(resp.request.request_id)
        return terms

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Holder, "set_terms", then_asked)
        exec(example.replace("localhost:7700", ex.address), {})
    assert len(asked) == 1
    scope, sequence = capsys.readouterr().out.split("\n")[:2]
    assert "ADVERTISING" in scope or "advertising" in scope.lower()
    assert int(sequence) > 0


def test_the_claims_shown_are_the_claims_signed(ex: Exchange, adv: Party) -> None:
    with Holder.connect(ex.address, PrivateKey.generate()) as me:
        _offer(me)
        request_licence(adv, me.public_key.raw)
        (pending,) = me.inbox()  # her view: the claims name her key
        claims = LicenceClaims.decode(pending.claims)
        assert claims.holder == me.public_key
        licence = me.approve(pending)
        token = parse_token(licence.token)
        assert isinstance(token.consent, Approval)
        assert keys.verify_signature(
            me.public_key.raw, keys.CONSENT, pending.claims, token.consent.signature
        )
