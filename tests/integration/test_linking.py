"""Can an outsider tell that two licences concern the same person? (issue 19, "Proof")

An adversary holds the whole public log, the public answers of the exchange (its checkpoint,
issuer keys and revocation feed, and the offers it shows advertiser A), every token of
advertiser A, and every token presented to one platform, which both A and B present to. It is
asked, for many pairs of licences held by different advertisers (one of A's, one of B's), whether
they concern the same person, and it uses everything a token and the log show: any key, digest,
salt, commitment or rule that two licences share, and the log entries their promises point at.

On today's format (v2: pairwise holder keys, asset digests salted per licence, sealed log
entries) it must do no better than chance. The same adversary, given the same licences as v1
tokens and v1 log entries (the holder's device key and plain digests in every licence, and
every licence in clear in the log), must link them all: so the test can fail.

Every holder offers the same terms, and the licences are issued in a random order: this test
is about the identifiers the formats carry. What terms, prices, sizes and timing can still tell
is written down in docs/privacy.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from licentia import pairwise, sealed
from licentia.clients.holder import Holder
from licentia.keys import PrivateKey
from licentia.token import (
    Approval,
    Asset,
    StandingConsent,
    approve,
    issue,
    parse_token,
)
from licentia.v1 import exchange_pb2, transparency_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from .exchange_harness import (
    Exchange,
    Party,
    register_advertiser,
    request_licence,
    start_exchange,
)

HOLDERS = 8
#: Licences each holder grants each of the two advertisers.
EACH = 2
TERMS: dict[str, Any] = {
    "categories": [DataCategory.IMAGE],
    "purposes": [Purpose.ADVERTISING],
    "media": [Medium.ONLINE],
    "territories": ["FR"],
    "price_per_day": 100,
}


def identifiers(token: str, entry: bytes) -> set[bytes]:
    """Everything in a licence and its log entry that could name a person or her content:
    the holder key, each asset digest, the standing rule (its bytes and key) or its
    commitment, and every 16-byte window of the log entry's tag and commitment (v2) or the
    entry itself (v1: it is the token)."""
    u = parse_token(token)
    out = {u.holder_key} - {b""}
    out |= set(u.asset_categories)
    consent = u.consent
    if isinstance(consent, StandingConsent):
        out |= {consent.rule_bytes, consent.signature}
    elif not isinstance(consent, Approval):
        out |= {consent.digest}
    logged = transparency_pb2.LogEntry.FromString(entry)
    if logged.HasField("sealed"):
        out |= {logged.sealed.tag, logged.sealed.commitment}
    return out


def same_person(a: set[bytes], b: set[bytes]) -> bool:
    """The adversary's verdict: the same person when the two share any identifier; otherwise
    it cannot tell, and says "not the same" (a fixed guess, so that chance is exactly the
    share of pairs that are not the same)."""
    return bool(a & b)


def accuracy(trials: Iterable[tuple[set[bytes], set[bytes], bool]]) -> float:
    results = [same_person(a, b) == truth for a, b, truth in trials]
    return sum(results) / len(results)


def _photo(i: int) -> bytes:
    return b"photo of person %d" % i


def _holder(ex: Exchange, i: int) -> Holder:
    me = Holder.connect(ex.address, PrivateKey.generate())
    me.register(f"person{i}")
    me.declare_asset(DataCategory.IMAGE, _photo(i), "me")  # each her own photo
    me.set_terms(**TERMS)
    return me


def test_an_adversary_links_nobody_across_advertisers_and_links_everyone_in_v1(
    tmp_path: Path,
) -> None:
    rng = random.Random(19)
    ex = start_exchange(tmp_path / "data")
    holders: list[Holder] = []
    try:
        a, b = ex.party(), ex.party()
        register_advertiser(a, "Advertiser A")
        register_advertiser(b, "Advertiser B")
        holders += [_holder(ex, i) for i in range(HOLDERS)]
        asks = [(h, adv) for h in range(HOLDERS) for adv in (a, b) for _ in range(EACH)]
        rng.shuffle(asks)  # issued in a random order: the log's order says nothing
        issued: list[tuple[int, Party, str]] = []  # (holder, advertiser, token)
        for h, adv in asks:
            me = holders[h]
            photo = hashlib.sha256(_photo(h)).digest()
            asked = request_licence(adv, me.public_key.raw, digests=(photo,)).request.request_id
            (pending,) = [r for r in me.inbox() if r.request_id == asked]
            # As her wallet does: consent with her pairwise key for the advertiser.
            secret = pairwise.holder_secret_from_device_seed(me.key.seed)
            issued.append((h, adv, me.approve(pending, holder_secret=secret).token))
        # What the adversary holds: the whole log, and the tokens of A and of the platform
        # (both advertisers present theirs to it: the pairs are one of A's, one of B's).
        log = ex.app.deps.store.log_entries(0, ex.app.deps.store.log_size())
        entries = {idx: raw for idx, raw, _ in log}
        offers = a.call(
            exchange_pb2,
            "SearchOffers",
            exchange_pb2.SearchOffersRequest(),
            exchange_pb2.SearchOffersResponse,
        )
        assert len(offers.offers) == HOLDERS
        assert not any(o.display_name for o in offers.offers)  # nobody chose to be shown

        def v2_view(token: str) -> set[bytes]:
            promise = parse_token(token).promise
            assert promise is not None  # every licence carries the log's promise
            entry = entries[promise.index]
            assert transparency_pb2.LogEntry.FromString(entry).sealed.commitment == (
                sealed.licence_commitment(token)
            )
            return identifiers(token, entry)

        # The same licences as today's format would have them: the holder's device key and
        # the plain digests in each, signed by the same issuer, each logged in clear.
        keys = {h: holders[h].key for h in range(HOLDERS)}
        plain = {h: holders[h].assets()[0].sha256 for h in range(HOLDERS)}

        def v1_view(h: int, token: str) -> set[bytes]:
            claims = parse_token(token).claims
            v1 = dataclasses.replace(
                claims,
                holder=keys[h].public,
                asset_salt=b"",
                status_list=0,
                assets=tuple(Asset(x.category, plain[h]) for x in claims.assets),
            )
            data = v1.encode()
            signer = ex.app.deps.keyring.private(claims.issuer_key_id)
            assert signer is not None
            old = issue(signer, data, approve(keys[h], data), claims=v1)
            assert old.startswith("lic1.")
            logged = transparency_pb2.LogEntry(licence=old).SerializeToString(deterministic=True)
            return identifiers(old, logged)

        of_a = [(h, t) for h, adv, t in issued if adv is a]
        of_b = [(h, t) for h, adv, t in issued if adv is b]
        same = [(x, y) for x in of_a for y in of_b if x[0] == y[0]]
        other = [(x, y) for x in of_a for y in of_b if x[0] != y[0]]
        pairs = same + rng.sample(other, len(same))  # half the same person, half not
        assert len(pairs) == 2 * HOLDERS * EACH * EACH
        now = accuracy((v2_view(x[1]), v2_view(y[1]), x[0] == y[0]) for x, y in pairs)
        before = accuracy(
            (v1_view(x[0], x[1]), v1_view(y[0], y[1]), x[0] == y[0]) for x, y in pairs
        )
        assert before == 1.0  # v1: the same key and the same photo digest in both
        assert now == 0.5  # v2: nothing shared, so only the fixed guess: chance
        # Within one advertiser, its own licences of one person do name one pseudonym
        # (it is party to them): and that pseudonym is neither her key nor B's pseudonym.
        for h in range(HOLDERS):
            mine_a = {parse_token(t).holder_key for x, t in of_a if x == h}
            mine_b = {parse_token(t).holder_key for x, t in of_b if x == h}
            assert len(mine_a) == len(mine_b) == 1
            assert not mine_a & mine_b
            assert keys[h].public.raw not in mine_a | mine_b
        # And nothing in the log shows a holder's key, a pseudonym, a licence id or a digest.
        everything = b"".join(entries.values())
        for h, _, token in issued:
            u = parse_token(token)
            for secret in (keys[h].public.raw, u.holder_key, u.licence_id, plain[h]):
                assert secret not in everything
    finally:
        for me in holders:
            me.close()
        ex.stop()
