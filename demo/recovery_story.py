"""The stolen-laptop story, with the real tools against a real exchange.

Alice's laptop is stolen with her wallet and (the worst case) her passphrase. The thief
approves a licence she never wanted and adds a payout destination of his own. On a new
machine, with nothing but her 12 paper words, Alice takes her account back in one command:
the thief's next approval is refused, she revokes what the stolen laptop approved after the
theft (and keeps what she approved before), and cancels the thief's payout destination before
its delay ends. A platform's verifier sees the thief's licence revoked. Her audit of the
public log shows every change of her keys.

Starts ``licentia-server`` as a separate process on a fresh temporary directory, runs the
wallet as the separate program it is, and removes everything at the end. Run with
``make demo-recovery``. Exits 0 only if every step ends as the story says.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import grpc  # type: ignore[import-untyped]
from exchange_story import (
    DAY,
    PLATFORM,
    StoryError,
    Wallet,
    exchange,
    operator,
    say,
    tell,
)

from licentia.clients.advertiser import Advertiser, LicenceRecord
from licentia.clients.channel import SignedChannel
from licentia.clients.verifier import Verifier
from licentia.keys import PrivateKey
from licentia.methods import path
from licentia.scope import IntendedUse
from licentia.v1 import registry_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

THIEF_IBAN = "XX00 THIEF 0000 0000 0000"


def ask(adv: Advertiser, days: int = 30) -> bytes:
    """The advertiser finds Alice's offer (named by its own reference to her) and asks for
    her photo for online ads in France; the request id."""
    offer = next(adv.search(DataCategory.IMAGE, Purpose.ADVERTISING, territory="FR"))
    now = int(time.time())
    return adv.request_licence(
        offer,
        offer.assets_in(DataCategory.IMAGE)[:1],
        categories=[DataCategory.IMAGE],
        purposes=[Purpose.ADVERTISING],
        media=[Medium.ONLINE],
        territories=["FR"],
        not_before=now,
        not_after=now + days * DAY,
        price=days * 200,
    ).request_id


def story(tmp: Path) -> None:
    """The whole story."""
    with exchange(tmp, payout_delay_hours=72) as server:
        say(f"The exchange runs at {server} (its own process, data in a fresh directory).")
        laptop = Wallet(tmp / "laptop", server)
        made = json.loads(laptop("init", "--yes", "--json"))
        phrase = made["recovery_phrase"]
        laptop("register", "--handle", "alice", "--name", "Alice Martin")
        photo_file = tmp / "alice.jpg"
        photo_file.write_bytes(b"\xff\xd8\xff a portrait of Alice")
        laptop("assets", "add", str(photo_file), "--category", "image", "--upload")
        laptop(
            "terms",
            "set",
            "--categories",
            "image",
            "--purposes",
            "advertising",
            "--media",
            "online",
            "--territories",
            "EU",
            "--price-per-day",
            "2.00",
            "--max-days",
            "90",
        )
        devices = json.loads(laptop("devices", "list", "--json"))
        say("Alice sets up her wallet on her laptop, registers and offers her photo. Her")
        say(
            f"account has {len(devices['keys'])} keys: the laptop's, and the recovery key of the"
            " 12 words she wrote on paper (never stored anywhere)."
        )

        with (
            Advertiser.connect(server, PrivateKey.generate()) as acme,
            Advertiser.connect(server, PrivateKey.generate()) as shady,
        ):
            for adv, name in ((acme, "Acme Ads"), (shady, "Shady Deals")):
                adv.register(name, "FR")
                operator(tmp, server, "deposit", adv.public_key.text, "40000", f"SEPA-{name}")
            good = ask(acme)
            laptop("approve", good.hex(), "--yes")
            kept = issued(acme, good)
            photo = kept.assets[0].sha256  # named by the licence, once she consented
            say("Acme Ads asks for her photo for 30 days of online ads; she approves on her")
            say("laptop. That licence is hers to keep.")

            time.sleep(1.1)
            stolen_at = int(time.time())
            thief_home = tmp / "thief"
            thief = Wallet(thief_home, server)
            shutil.copy2(tmp / "laptop" / "wallet.json", thief_home / "wallet.json")
            say("")
            say("Her laptop is stolen, with the wallet and (worst case) her passphrase.")
            bad = ask(shady, days=90)
            thief("approve", bad.hex(), "--yes")
            stolen = issued(shady, bad)
            say("The thief approves Shady Deals' request for 90 days in her name,")
            added = json.loads(thief("payouts", "add", THIEF_IBAN, "--json"))
            state = added["state"].removeprefix("PAYOUT_DESTINATION_STATE_").lower()
            say(f"and adds his own bank account as a payout destination ({state}).")
            code, _, err = thief.run("withdraw", "0.01", "--to", THIEF_IBAN)
            if code == 0 or "PAYOUT_DESTINATION_PENDING" not in err:
                raise StoryError(f"the thief's withdrawal was not refused as pending: {err}")
            say("His withdrawal is refused: a new destination waits 72 hours (PENDING).")
            later = ask(shady, days=60)

            say("")
            say("On a new machine, with only her 12 words, Alice takes her account back:")
            new_home = tmp / "new-machine"
            fresh = Wallet(new_home, server)
            phrase_file = new_home / "phrase.txt"
            phrase_file.write_text(phrase + "\n")
            started = time.monotonic()
            done = json.loads(
                fresh(
                    "recover",
                    "--phrase-file",
                    str(phrase_file),
                    "--handle",
                    "alice",
                    "--name",
                    "new laptop",
                    "--json",
                )
            )
            phrase_file.unlink()
            took = time.monotonic() - started
            say(
                f"    licentia-wallet recover: {took:.1f} s; the old laptop's key is removed as"
                " compromised, the new one is in."
            )
            code, _, err = thief.run("approve", later.hex(), "--yes")
            if code == 0 or "KEY_REMOVED" not in err:
                raise StoryError(f"the stolen laptop's approval was not refused: {err}")
            say("The thief tries to approve another request: refused (KEY_REMOVED), at once.")

            old_key = made["public_key"]
            listed = json.loads(
                fresh(
                    "devices",
                    "revoke-consents",
                    old_key,
                    "--since",
                    str(stolen_at),
                    "--yes",
                    "--json",
                )
            )
            revoked = json.dumps(listed["licences"])
            if (
                listed["revoked"] is not True
                or stolen.licence_id.hex() not in revoked
                or kept.licence_id.hex() in revoked
            ):
                raise StoryError(f"the wrong licences were revoked: {listed}")
            say("She lists what the stolen laptop approved since the theft and revokes it: the")
            say("Shady Deals licence. Acme's, approved before, stays valid.")

            payouts = json.loads(fresh("payouts", "list", "--json"))
            pending = [d for d in payouts if d["reference"] == THIEF_IBAN]
            if not pending or pending[0]["state"] != "PAYOUT_DESTINATION_STATE_PENDING":
                raise StoryError(f"the thief's destination is not pending: {payouts}")
            fresh("payouts", "cancel", THIEF_IBAN)
            say("She sees the thief's bank account among her payout destinations, still in its")
            say("delay, and cancels it: nothing of hers can ever be paid there.")

            channel = _platform_channel(server)
            verifier = Verifier(channel, PLATFORM)
            verifier.start(timeout=10)
            try:
                use = IntendedUse(
                    DataCategory.IMAGE, Purpose.ADVERTISING, Medium.ONLINE, "FR", photo
                )
                for adv, lic, verdict in (
                    (shady, stolen, "DENY"),
                    (acme, kept, "ALLOW"),
                ):
                    decision = verifier.check(lic.token, adv.present(lic, PLATFORM, use), use)
                    if str(decision).split()[0] != verdict:
                        raise StoryError(f"the verifier said {decision}, not {verdict}")
                    who = "Shady" if adv is shady else "Acme"
                    say(f"    a platform checks the {who} licence: {decision}")
            finally:
                verifier.close()
                channel.close()

            audit = json.loads(fresh("audit", "--json"))
            if audit["problems"]:
                raise StoryError(f"her audit found problems: {audit['problems']}")
            changes = audit["key_set"]["changes"]
            say(
                f"Her audit of the public log shows every change of her keys ({len(changes)}),"
                " each signed by a key she held:"
            )
            for c in changes:
                say(f"    #{c['number']} {c['kind']}")
            del done
    say("The exchange has stopped; its temporary directory is removed.")


def issued(adv: Advertiser, request_id: bytes) -> LicenceRecord:
    """The licence issued for the request (once its holder approved it)."""
    licence = adv.wait_for_decision(request_id, timeout=30).licence
    if licence is None:
        raise StoryError("the request was not issued")
    return licence


def _platform_channel(server: str) -> grpc.Channel:
    """A registered platform's channel (the verifier follows the revocation feed on it)."""
    channel = grpc.insecure_channel(server)
    key = PrivateKey.generate()
    SignedChannel(channel, key).unary(
        path(registry_pb2, "RegisterPlatform"),
        registry_pb2.RegisterPlatformRequest(platform_id=PLATFORM, name="PhotoShare"),
        registry_pb2.RegisterPlatformResponse,
    )
    return channel


def main() -> int:
    """Tell the story; 0 if every step ended as it should."""
    return tell(story, "licentia-recovery-")


if __name__ == "__main__":
    sys.exit(main())
