"""The store contract, parties, assets, terms and standing rules (both backends)."""

from __future__ import annotations

import dataclasses
import hashlib

from licentia.errors import Reason
from licentia.services.model import (
    AssetRow,
    Party,
    Role,
    StandingRuleRow,
)
from licentia.services.store import Store
from licentia.vocabulary import DataCategory

from .harness import (
    NOW,
    Opener,
    _key,
    _party,
    _raises,
    _terms,
)


# -- parties, assets, terms, rules -----------------------------------------------------------
def test_parties(store: Store) -> None:
    a = _party(_key(10), Role.HOLDER, "alice")
    store.add_party(a)
    assert store.party(a.key) == a
    assert store.party(_key(11)) is None
    _raises(Reason.ALREADY_EXISTS, lambda: store.add_party(a))
    _raises(
        Reason.ALREADY_EXISTS,
        lambda: store.add_party(_party(_key(12), Role.ADVERTISER, "alice")),
    )
    changed = store.update_party(a.key, display_name="Alice B", objecting=True)
    assert changed == dataclasses.replace(a, display_name="Alice B", objecting=True)
    assert store.party(a.key) == changed
    _raises(Reason.NOT_FOUND, lambda: store.update_party(_key(13), objecting=True))
    platform = Party(_key(14), Role.PLATFORM, "", "Platform", "DE", NOW)
    store.add_party(platform)  # no handle: several parties may have none
    store.add_party(dataclasses.replace(platform, key=_key(15)))
    assert store.party(_key(14)) == platform


def test_platforms_are_listed_by_id_in_pages(store: Store) -> None:
    store.add_party(_party(_key(30), Role.HOLDER, "aaa"))
    store.add_party(_party(_key(31), Role.ADVERTISER, ""))
    shops = [_party(_key(32 + i), Role.PLATFORM, f"shop{i}") for i in (2, 0, 1)]
    for p in shops:
        store.add_party(p)
    ordered = sorted(shops, key=lambda p: p.handle)
    assert store.platforms("", 10) == ordered  # platforms only, by id
    assert store.platforms("", 2) == ordered[:2]
    assert store.platforms("shop1", 10) == ordered[2:]
    assert store.platforms("shop2", 10) == []


def test_assets(store: Store) -> None:
    h = _key(20)
    photo, voice = hashlib.sha256(b"photo").digest(), hashlib.sha256(b"voice").digest()
    row = AssetRow(h, photo, DataCategory.IMAGE, "me", 0, False, NOW)
    got = store.put_asset(row, b"jpeg bytes")
    assert (got.content_size, got.has_content) == (10, True)
    store.put_asset(AssetRow(h, voice, DataCategory.VOICE, "hello", 0, False, NOW), None)
    # Rectified without bytes: label and category replaced, the bytes kept.
    again = store.put_asset(dataclasses.replace(row, label="portrait", declared_at=NOW + 1), None)
    assert (again.label, again.content_size, again.has_content) == ("portrait", 10, True)
    assert [a.sha256 for a in store.assets(h)] == [photo, voice]
    assert store.asset_content(h, photo) == b"jpeg bytes"
    assert store.asset_content(h, voice) is None
    assert store.asset_content(_key(21), photo) is None
    # A byte-less asset declared again without bytes stays byte-less.
    voice_again = store.put_asset(
        AssetRow(h, voice, DataCategory.VOICE, "hi", 0, False, NOW + 2), None
    )
    assert (voice_again.label, voice_again.content_size, voice_again.has_content) == (
        "hi",
        0,
        False,
    )
    assert store.assets(_key(21)) == []
    # By digest alone (CheckAssetDigests): whose is not said.
    other = hashlib.sha256(b"nobody's").digest()
    assert store.declared_digests([photo, other, voice]) == {photo, voice}
    assert store.declared_digests([]) == set()


def test_terms_and_offers(store: Store) -> None:
    for i, handle in enumerate(["bea", "al", "cy", "dee"]):
        store.add_party(_party(_key(30 + i), Role.HOLDER, handle))
    assert store.terms(_key(30)) is None
    store.set_terms(_key(30), _terms(100))
    store.set_terms(_key(30), _terms(250))  # replaced
    assert store.terms(_key(30)) == _terms(250)
    store.set_terms(_key(31), _terms())
    store.set_terms(_key(33), _terms())
    store.update_party(_key(33), objecting=True)  # objects: no offer
    assert [p.handle for p, _ in store.offers("", 10)] == ["al", "bea"]
    assert [p.handle for p, _ in store.offers("al", 10)] == ["bea"]
    assert [p.handle for p, _ in store.offers("", 1)] == ["al"]
    assert store.offers("", 10)[1] == (store.party(_key(30)), _terms(250))


def test_standing_rules(store: Store) -> None:
    h = _key(40)
    rules = [StandingRuleRow(bytes([i]) * 16, h, b"rule%d" % i, b"sig", NOW + i) for i in (3, 1, 2)]
    for r in rules:
        store.add_rule(r)
    _raises(Reason.ALREADY_EXISTS, lambda: store.add_rule(rules[0]))
    assert store.rules(h) == rules  # oldest first
    withdrawn = store.withdraw_rule(h, rules[1].rule_id, NOW + 9)
    assert withdrawn == dataclasses.replace(rules[1], withdrawn_at=NOW + 9)
    # Withdrawing again keeps the first withdrawal; another holder's rule is not found.
    assert store.withdraw_rule(h, rules[1].rule_id, NOW + 10).withdrawn_at == NOW + 9
    _raises(Reason.NOT_FOUND, lambda: store.withdraw_rule(_key(41), rules[0].rule_id, NOW))
    assert store.rules(_key(41)) == []
    # A request's inputs read together: the same as read one by one; another holder's apart.
    store.set_terms(h, _terms(120))
    photo = hashlib.sha256(b"photo").digest()
    store.put_asset(AssetRow(h, photo, DataCategory.IMAGE, "me", 0, False, NOW), None)
    store.put_asset(AssetRow(_key(41), photo, DataCategory.IMAGE, "not hers", 0, False, NOW), None)
    assert store.holder_offer(h) == (store.terms(h), store.assets(h), store.rules(h))
    assert store.holder_offer(h)[0] == _terms(120)
    assert [a.label for a in store.holder_offer(h)[1]] == ["me"]
    assert store.holder_offer(h)[2] == [rules[0], withdrawn, rules[2]]
    assert store.holder_offer(_key(42)) == (None, [], [])


def test_the_references_secret_is_one_for_every_replica_and_holders_are_found_by_prefix(
    opener: Opener,
) -> None:
    first, second = opener(), opener()  # two replicas on one database
    secret = second.exchange_secret("offer_refs")
    assert len(secret) == 32
    assert first.exchange_secret("offer_refs") == secret
    assert opener().exchange_secret("offer_refs") == secret  # and after a restart
    assert first.exchange_secret("another") != secret
    holder = dataclasses.replace(_party(_key(40), Role.HOLDER, "alice"), show_name=True)
    first.add_party(holder)
    first.add_party(_party(_key(41), Role.ADVERTISER, ""))
    assert second.party(holder.key) == holder
    assert second.holders_by_prefix(holder.key[:16]) == [holder]
    assert second.holders_by_prefix(_key(41)[:16]) == []  # an advertiser is no holder
    assert second.holders_by_prefix(holder.key[:15]) == []
    assert second.holders_by_prefix(bytes(16)) == []
    hidden = second.update_party(holder.key, show_name=False)
    assert hidden == dataclasses.replace(holder, show_name=False)
    assert second.key_owner(holder.key) is not None
    assert second.key_owner(holder.key)[0] == hidden  # type: ignore[index]
