"""The Licentia story, told with the protocol core (no server yet).

A person licenses one photo to an advertiser for three months, for advertising on social
media in France and Germany. A platform checks the licence inline before publishing; a
use outside the licence is refused with its reason; a stolen token is worthless; then the
person revokes the licence, and the platform refuses it from that moment.

Run with ``make demo``. Exits 0 only if every step ends as the story says.
"""

from __future__ import annotations

import hashlib
import sys
import time

from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
from licentia.nonces import MemoryNonceStore
from licentia.presentation import present
from licentia.scope import IntendedUse, Scope
from licentia.status import StatusEvent, StatusLists, StatusView, verify_snapshot
from licentia.token import (
    Asset,
    LicenceClaims,
    PriceTerms,
    approve,
    issue,
    new_licence_id,
    parse_token,
)
from licentia.verify import Decision, VerificationEngine
from licentia.vocabulary import DataCategory, Medium, Purpose

PLATFORM = "photoshare.example"
DAY = 86400


def say(text: str) -> None:
    """One line of the story."""
    print(text, flush=True)


def expect(decision: Decision, allowed: bool, *reasons: str) -> bool:
    """Print a decision; True if it is the one the story expects."""
    say(f"    -> {decision}")
    got = tuple(r.name for r in decision.reasons)
    return decision.allowed == allowed and got == reasons


def main() -> int:
    """Tell the story; 0 if every step ended as expected."""
    now = int(time.time())
    ok = True

    exchange = PrivateKey.generate()
    alice = PrivateKey.generate()
    brightside = PrivateKey.generate()
    say("Keys: the exchange, Alice (the person), Brightside Ads (the advertiser).")
    say(f"  Alice is {alice.public.text}")

    photo = b"\x89PNG... Alice's portrait, exactly these bytes ..."
    digest = hashlib.sha256(photo).digest()
    say(f"Alice's photo has SHA-256 {digest.hex()[:16]}...; the licence names it by digest.")

    claims = LicenceClaims(
        licence_id=new_licence_id(now),
        issuer_key_id=exchange.public.key_id,
        holder=alice.public,
        licensee=brightside.public,
        assets=(Asset(DataCategory.IMAGE, digest),),
        scope=Scope.of([DataCategory.IMAGE], [Purpose.ADVERTISING], [Medium.SOCIAL], ["FR", "DE"]),
        issued_at=now,
        not_before=now,
        not_after=now + 90 * DAY,
        status_index=0,
        price=PriceTerms("EUR", 15_000, 0, 1000),
        max_uses=100,
    )
    say(
        "Brightside asks: Alice's photo, for advertising, on social media, in FR and DE, "
        "for 90 days, at most 100 uses, EUR 150.00."
    )
    claims_bytes = claims.encode()
    consent = approve(alice, claims_bytes)
    say(f"Alice reads it and signs these exact {len(claims_bytes)} claim bytes: her consent.")
    token = issue(exchange, claims_bytes, consent)
    say(f"The exchange countersigns and issues the licence ({len(token)} characters):")
    say(f"  {token[:60]}...")

    keys = IssuerKeySet([IssuerKey(exchange.public, now - DAY)])
    statuses = StatusLists()
    snapshot = verify_snapshot(statuses.snapshot(exchange, 0, now), keys)
    view = StatusView(snapshot, staleness_bound=60)
    platform = VerificationEngine(keys, view, audience=PLATFORM, nonces=MemoryNonceStore())
    say(f"The platform {PLATFORM} loads the exchange's keys and its signed status list.")

    ad = IntendedUse(
        DataCategory.IMAGE, Purpose.PERSONALISED_ADVERTISING, Medium.SOCIAL, "FR", digest
    )
    say("1. Brightside presents the licence for a personalised ad on social media in France:")
    proof = present(brightside, claims.licence_id, PLATFORM, ad, now)
    ok &= expect(platform.verify(token, ad, now, presentation=proof), True)

    campaign = IntendedUse(
        DataCategory.IMAGE, Purpose.POLITICAL_CAMPAIGN, Medium.SOCIAL, "FR", digest
    )
    say("2. Brightside tries the same photo in a political campaign:")
    proof = present(brightside, claims.licence_id, PLATFORM, campaign, now)
    ok &= expect(
        platform.verify(token, campaign, now, presentation=proof), False, "OUT_OF_SCOPE_PURPOSE"
    )

    say("3. Someone copies the token and presents it with their own key:")
    thief = PrivateKey.generate()
    proof = present(thief, claims.licence_id, PLATFORM, ad, now)
    ok &= expect(platform.verify(token, ad, now, presentation=proof), False, "WRONG_LICENSEE")

    say("4. Alice changes her mind and revokes the licence; no reason needed.")
    licence = parse_token(token)
    statuses.revoke(licence.status_list, licence.status_index)
    view.apply(
        StatusEvent(
            sequence=1,
            status_list=licence.status_list,
            status_index=licence.status_index,
            revoked_at=now + 5,
        )
    )
    say("   The revocation reaches the platform as status event 1.")
    proof = present(brightside, claims.licence_id, PLATFORM, ad, now + 6)
    ok &= expect(platform.verify(token, ad, now + 6, presentation=proof), False, "REVOKED")

    say("5. A platform that stops hearing from the exchange fails closed:")
    other = VerificationEngine(
        keys, StatusView(snapshot, staleness_bound=60), audience=PLATFORM, nonces=MemoryNonceStore()
    )
    proof = present(brightside, claims.licence_id, PLATFORM, ad, now + 120)
    ok &= expect(other.verify(token, ad, now + 120, presentation=proof), False, "STATUS_STALE")

    say("The story ends as it should." if ok else "The story went wrong: see above.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
