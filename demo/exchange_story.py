"""The Licentia story, with the real tools against a real exchange.

Starts ``licentia-server`` as a separate process on a fresh temporary data directory; then a
person (with ``licentia-wallet``), an advertiser (with the SDK) and a platform (with the
inline verifier) play their parts. Every step is one or two lines. The story ends with the ad
file: a file carries no counted licence (its uses would go uncounted), so Acme Ads takes a
second licence for its creative, priced for its term alone, which Alice approves; the file
carries it (Content Credentials); another platform checks it with ``licentia-verify --file``;
a C2PA reader that knows nothing of Licentia shows it; Alice checks it with
``licentia-wallet check`` and revokes that licence from there; the same file is then
DENY REVOKED, while the per-use licence goes on. The server is stopped and the directory
removed at the end, also on Ctrl-C or an error.

Run with ``make demo``. Exits 0 only if every step ends as the story says.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import c2pa
import grpc  # type: ignore[import-untyped]

from licentia.clients.advertiser import (
    Advertiser,
    LicenceRecord,
    LicenceRequest,
    Offer,
    OfferedAsset,
    Statement,
)
from licentia.clients.channel import SignedChannel
from licentia.clients.logcheck import LogClient
from licentia.clients.shown import shown
from licentia.clients.verifier import Verifier
from licentia.errors import LicentiaError, Reason
from licentia.examples import tiny_png
from licentia.keys import PrivateKey, PublicKey
from licentia.methods import path
from licentia.scope import IntendedUse
from licentia.token import parse_token
from licentia.v1 import registry_pb2, transparency_pb2, verification_pb2
from licentia.verify import Decision
from licentia.vocabulary import DataCategory, Medium, Purpose

PLATFORM = "photoshare"
#: The price of each ad shown (minor units) and the most ads the licence allows.
PER_USE = 50
MAX_USES = 100
IBAN = "FR76 3000 6000 0112 3456 7890 189"
PASSPHRASE = "a long passphrase for the demo"
#: The demo exchange's payout delay: 5.4 seconds (a real one waits 72 hours by default).
#: The withdrawal the delay refuses comes right after the destination is added; on a loaded
#: machine a shorter delay could pass before it.
PAYOUT_DELAY_HOURS = 0.0015
DAY = 86400


def eur(minor: int) -> str:
    """Minor units as euros."""
    return f"{minor / 100:.2f} EUR"


def operator(data: Path, server: str, *argv: str) -> str:
    """``licentia-server`` as the exchange's operator uses it (signed with the operator key)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "licentia.services.server",
            *argv,
            "--data-dir",
            str(data / "exchange"),
            "--connect",
            server,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise StoryError(f"licentia-server {argv[0]} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def money(st: Statement) -> str:
    """An advertiser's statement in one line."""
    return f"available {eur(st.available)}, in escrow {eur(st.escrowed)}, spent {eur(st.spent)}"


def earnings(wallet: Wallet) -> dict[str, int]:
    """The person's earnings, as their wallet reports them."""
    doc = json.loads(wallet("earnings", "--json"))
    return {k: int(doc.get(k, 0)) for k in ("available_minor", "total_minor", "pending_minor")}


def say(text: str) -> None:
    """One line of the story."""
    print(text, flush=True)


class StoryError(Exception):
    """A step did not end as the story says."""


@contextlib.contextmanager
def exchange(data: Path, payout_delay_hours: float = PAYOUT_DELAY_HOURS) -> Iterator[str]:
    """``licentia-server`` in its own process; yields its address; always stops it."""
    port_file = data / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "licentia.services.server",
            "--data-dir",
            str(data / "exchange"),
            "--listen",
            "127.0.0.1:0",
            "--port-file",
            str(port_file),
            "--heartbeat-seconds",
            "1",
            # A new payout destination is usable after 4 s here (72 hours by default), so
            # that the story shows the rule without waiting days.
            "--payout-delay-hours",
            str(payout_delay_hours),
        ],
        stdout=subprocess.DEVNULL,
        stderr=(data / "server.log").open("w"),
    )
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StoryError("the exchange did not start (see its log)")
            time.sleep(0.05)
        yield f"127.0.0.1:{port_file.read_text().strip()}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Wallet:
    """The person's ``licentia-wallet``, run as the separate program it is."""

    def __init__(self, home: Path, server: str) -> None:
        self.env = {
            **os.environ,
            "LICENTIA_WALLET": str(home / "wallet.json"),
            "LICENTIA_SERVER": server,
        }
        self.pass_file = home / "passphrase"
        home.mkdir()
        self.pass_file.write_text(PASSPHRASE + "\n")
        self.pass_file.chmod(0o600)

    def __call__(self, *argv: str) -> str:
        code, out, err = self.run(*argv)
        if code != 0:
            raise StoryError(f"licentia-wallet {argv[0]} failed: {err.strip()}")
        return out

    def run(self, *argv: str) -> tuple[int, str, str]:
        """The wallet's exit status, stdout and stderr (a refusal is no error here)."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "licentia.clients.wallet.cli",
                *argv,
                "--insecure",  # the demo's exchange is local, without TLS
                "--passphrase-file",
                str(self.pass_file),
            ],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )
        return out.returncode, out.stdout, out.stderr


def verify_file(server: str, path: Path, verdict: str) -> str:
    """``licentia-verify --file`` as the separate program it is, for a personalised ad online
    in France; its verdict line, which must be ``verdict``."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "licentia.clients.verifier.cli",
            "--file",
            str(path),
            "--server",
            server,
            "--insecure",
            "--purpose",
            "personalised-advertising",
            "--medium",
            "online",
            "--territory",
            "FR",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = (out.stdout.splitlines() or [out.stderr.strip()])[0]
    if said != verdict:
        raise StoryError(f"licentia-verify --file: expected {verdict}, got {said}")
    return said


def c2pa_view(path: Path) -> list[str]:
    """What the C2PA SDK alone shows of ``path``: no Licentia code, no trust anchor.

    The story says the signature and hard binding hold only when the reader says so
    (``Valid``; StoryError otherwise), and every name the file gives is printed sanitised
    (:func:`licentia.clients.shown.shown`)."""
    with c2pa.Reader(str(path)) as reader:
        state = reader.get_validation_state()
        manifest = reader.get_active_manifest()
    if state != "Valid":
        raise StoryError(f"the C2PA reader says {shown(str(state), one_line=True)}, not Valid")
    signed = manifest["signature_info"]
    labels = [a["label"] for a in manifest["assertions"]]
    data = next(a["data"] for a in manifest["assertions"] if a["label"] == "org.licentia.licence")

    def said(value: object, chars: int | None = None) -> str:
        return shown(str(value)[:chars], one_line=True)

    return [
        f"manifest signed by {said(signed['issuer'])} ({said(signed['common_name'], 22)}…),"
        f" {said(signed['alg'])};",
        f"state {state} (its signature and hard binding hold; it was given no trust anchor)",
        "assertions: " + ", ".join(said(label) for label in labels),
        f"org.licentia.licence: token {said(data['token'], 12)}… ({len(data['token'])}"
        " characters),",
        f"  asset_digest {said(data['asset_digest'], 16)}… (her photo, salted as the licence"
        " names it),",
        f"  logged at leaf {said(data['log_index'])}, status at {said(data.get('exchange', '?'))}",
    ]


def ask(
    adv: Advertiser,
    offer: Offer,
    wanted: list[OfferedAsset],
    *,
    price_per_use: int = 0,
    max_uses: int = 0,
) -> LicenceRequest:
    """Acme Ads asks for her photo and name, online ads in France, from now for 30 days,
    at her price for the term (and, if given, so much for each use, so many at most)."""
    now = int(time.time())
    return adv.request_licence(
        offer,
        wanted,
        categories=[DataCategory.IMAGE, DataCategory.NAME],
        purposes=[Purpose.ADVERTISING],
        media=[Medium.ONLINE],
        territories=["FR"],
        not_before=now,
        not_after=now + 30 * DAY,
        price=offer.terms.price_for(30 * DAY),
        price_per_use=price_per_use,
        max_uses=max_uses,
    )


def creative_licence(
    adv: Advertiser, wallet: Wallet, offer: Offer, wanted: list[OfferedAsset]
) -> LicenceRecord:
    """Acme Ads' licence for its creative: the same use of her photo and name, 30 days,
    priced for its term alone (no use counted, no price per use: what a file may carry,
    token-format §12.2); Alice approves it."""
    asked = ask(adv, offer, wanted)
    wallet("approve", asked.request_id.hex(), "--yes")
    licence = adv.wait_for_decision(asked.request_id, timeout=30).licence
    if licence is None:
        raise StoryError("no licence for the creative after the approval")
    return licence


def expect(decision: Decision, verdict: str) -> str:
    """The decision as words; raises unless it is ``verdict`` (e.g. "DENY REVOKED")."""
    if str(decision) != verdict:
        raise StoryError(f"expected {verdict}, got {decision}")
    return str(decision)


def story(tmp: Path) -> None:
    """The whole story."""
    with exchange(tmp) as server:
        say(f"The exchange runs at {server} (its own process, data in a fresh directory).")

        # The person.
        wallet = Wallet(tmp / "alice", server)
        made = json.loads(wallet("init", "--yes", "--json"))
        key = made["public_key"]
        say(f"Alice creates her wallet: her key {key[:20]}… is encrypted under her passphrase.")
        say(
            f"She writes her {len(made['recovery_phrase'].split())} recovery words on paper:"
            " they are never stored; register adds their key to her account."
        )
        wallet("register", "--handle", "alice", "--name", "Alice Martin")
        photo, voice, name = tmp / "alice.png", tmp / "alice.wav", tmp / "name.txt"
        photo.write_bytes(tiny_png(32, 32, seed=42))  # a real (tiny) image
        voice.write_bytes(b"RIFF Alice reading a sentence")
        name.write_bytes(b"Alice Martin")
        wallet("assets", "add", str(photo), "--category", "image", "--upload")
        wallet("assets", "add", str(voice), "--category", "voice")
        wallet("assets", "add", str(name), "--category", "name", "--upload")
        wallet(
            "terms",
            "set",
            "--categories",
            "image,name,voice",
            "--purposes",
            "advertising",
            "--refuse",
            "political-campaign",
            "--media",
            "online,social",
            "--territories",
            "EU",
            "--price-per-day",
            "2.00",
            "--max-days",
            "90",
        )
        say("She registers, declares a photo, a voice sample and her name, and offers them for")
        say("advertising online in the EU at 2.00 EUR a day, 90 days at most; never politics.")

        # The advertiser.
        with Advertiser.connect(server, PrivateKey.generate()) as adv:
            adv.register("Acme Ads", "FR")
            operator(tmp, server, "deposit", adv.public_key.text, "20000", "SEPA-2026-0042")
            say("Acme Ads registers and pays 200.00 EUR into its account by bank transfer; the")
            say(f"exchange's operator credits it: {money(adv.statement())}.")
            offer = next(adv.search(DataCategory.IMAGE, Purpose.ADVERTISING, territory="FR"))
            wanted = [
                *offer.assets_in(DataCategory.IMAGE)[:1],
                *offer.assets_in(DataCategory.NAME)[:1],
            ]
            asked = ask(adv, offer, wanted, price_per_use=PER_USE, max_uses=MAX_USES)
            if offer.display_name:
                raise StoryError("the offer shows a name Alice did not choose to show")
            say(f"Acme Ads finds an offer that names nobody: {offer.offer_ref.hex()[:12]}…, its")
            say("own reference to her (another advertiser gets another), her terms, and")
            say("references to her assets; no key, no handle, no name, no photo digest.")
            say("Acme Ads asks for her photo and name, online ads in France,")
            say(
                f"30 days, for {eur(offer.terms.price_for(30 * DAY))} plus {eur(PER_USE)} for"
                f" each ad shown, {MAX_USES} at most."
            )

            # The person reads and approves.
            inbox = wallet("inbox")
            say("Alice reads her inbox:")
            for line in inbox.splitlines():
                if line.split(":")[0] in (
                    "Who",
                    "Your data",
                    "For",
                    "Where",
                    "In",
                    "Until",
                    "Price",
                ):
                    say("    " + line)
            wallet("approve", asked.request_id.hex(), "--yes")
            licence = adv.wait_for_decision(asked.request_id, timeout=30).licence
            if licence is None:
                raise StoryError("no licence after the approval")
            say("She approves: her signature covers those exact terms. Acme Ads receives licence")
            say(f"{licence.licence_id.hex()[:16]}… ({len(licence.token)} characters).")
            say(f"The whole price is held in escrow: {money(adv.statement())}.")

            # The platform.
            channel = grpc.insecure_channel(server)
            with Verifier(channel, PLATFORM, staleness_seconds=10) as verifier:
                photo_sha = next(
                    a.sha256 for a in licence.assets if a.category == DataCategory.IMAGE
                )

                def check(purpose: Purpose, where: str, lic: LicenceRecord = licence) -> Decision:
                    use = IntendedUse(DataCategory.IMAGE, purpose, Medium.ONLINE, where, photo_sha)
                    return verifier.check(lic.token, adv.present(lic, PLATFORM, use), use)

                say("PhotoShare's verifier checks each publication inline, before it goes out:")
                say(
                    "    personalised ad in France     -> "
                    + expect(check(Purpose.PERSONALISED_ADVERTISING, "FR"), "ALLOW")
                )
                say(
                    "    political campaign in France  -> "
                    + expect(check(Purpose.POLITICAL_CAMPAIGN, "FR"), "DENY OUT_OF_SCOPE_PURPOSE")
                )
                say(
                    "    advertising in Germany        -> "
                    + expect(check(Purpose.ADVERTISING, "DE"), "DENY OUT_OF_SCOPE_TERRITORY")
                )

                # The platform publishes two ads and reports each use: each one is paid.
                platform_key = PrivateKey.generate()
                platform = SignedChannel(channel, platform_key)
                platform.unary(
                    path(registry_pb2, "RegisterPlatform"),
                    registry_pb2.RegisterPlatformRequest(platform_id=PLATFORM, name="PhotoShare"),
                    registry_pb2.RegisterPlatformResponse,
                )
                ad = IntendedUse(
                    DataCategory.IMAGE,
                    Purpose.PERSONALISED_ADVERTISING,
                    Medium.ONLINE,
                    "FR",
                    photo_sha,
                )
                for _ in range(2):
                    platform.unary(
                        path(verification_pb2, "ReportUse"),
                        verification_pb2.ReportUseRequest(
                            report_id=os.urandom(16),
                            token=licence.token,
                            presentation=adv.present(licence, PLATFORM, ad),
                            use=ad.to_proto(),
                        ),
                        verification_pb2.ReportUseResponse,
                    )
                earned = earnings(wallet)
                say(
                    "PhotoShare shows two ads and reports each use. Alice's wallet, a moment later:"
                )
                say(
                    f"    earned {eur(earned['total_minor'])} (after the exchange's 10% fee),"
                    f" available {eur(earned['available_minor'])},"
                    f" still to come {eur(earned['pending_minor'])} if the licence runs its term"
                )
                if earned["total_minor"] < 2 * PER_USE * 9 // 10:
                    raise StoryError("the uses were not paid")

                # The ad travels on its own: it carries a licence of its own, uncounted.
                source, ad_file = tmp / "creative.png", tmp / "acme-ad.png"
                source.write_bytes(adv.fetch_asset(licence.licence_id, photo_sha))
                try:
                    adv.sign_content(source, ad_file, licence, photo_sha)
                    raise StoryError("the SDK put a per-use licence in a file")
                except LicentiaError as e:
                    if e.reason != Reason.CONTENT_USES_COUNTED or ad_file.exists():
                        raise StoryError(f"the per-use licence was refused wrongly: {e}") from e
                creative = creative_licence(adv, wallet, offer, wanted)
                say("The ad file will travel where nobody counts or reports its uses, so it cannot")
                say("carry the per-use licence (the SDK refuses: CONTENT_USES_COUNTED). Acme Ads")
                say(
                    f"asks for a second licence for its creative, priced for its term alone:"
                    f" 30 days, {eur(offer.terms.price_for(30 * DAY))}, no count."
                )
                say(
                    f"Alice approves it: licence {creative.licence_id.hex()[:16]}…;"
                    f" {money(adv.statement())}."
                )
                adv.sign_content(source, ad_file, creative, photo_sha, exchange=server)
                say(
                    "Acme Ads makes its ad from her photo; the SDK's sign_content puts that licence"
                )
                say(
                    f"in the file: {ad_file.name} ({ad_file.stat().st_size} bytes), a PNG with"
                    " Content Credentials (C2PA) signed by Acme Ads' key."
                )
                say("Another platform, which never saw the licence, checks the file at upload:")
                say(
                    f"    licentia-verify --file {ad_file.name} -> "
                    + verify_file(server, ad_file, "ALLOW")
                )
                say("Any C2PA reader (c2pa-python alone, on the file alone, no Licentia code):")
                for line in c2pa_view(ad_file):
                    say("    " + line)

                # The person checks the ad and revokes; the platform hears of it at once.
                denied_at: list[float] = []

                def watch() -> None:
                    end = time.monotonic() + 10
                    while time.monotonic() < end:
                        if str(check(Purpose.ADVERTISING, "FR", creative)) == "DENY REVOKED":
                            denied_at.append(time.monotonic())
                            return
                        time.sleep(0.0005)

                watcher = threading.Thread(target=watch)
                watcher.start()
                started = time.monotonic()
                said = wallet("check", str(ad_file), "--yes")  # she checks it, then revokes it
                returned = time.monotonic()
                watcher.join()
                if not denied_at:
                    raise StoryError("the platform never heard of the revocation")
                if "still valid" not in said or "Revoked licence" not in said:
                    raise StoryError(f"her wallet's check did not go as it should: {said}")
                say("Alice comes across the ad and checks it: licentia-wallet check acme-ad.png")
                for line in said.splitlines():
                    if line.startswith(("This file", "Who:", "Status:")):
                        say("    " + line)
                say("She changes her mind and revokes it on the spot (--yes); no reason needed:")
                say("    " + said.strip().splitlines()[-1])
                lag = (denied_at[0] - returned) * 1000
                when = (
                    f"{-lag:.0f} ms before her wallet had even printed the receipt"
                    if lag < 0
                    else f"{lag:.0f} ms after her wallet confirmed it"
                )
                total = (denied_at[0] - started) * 1000
                say(f"The revocation reached the platform's verifier {when}")
                say(f"({total:.0f} ms after she ran the command, mostly starting the wallet and")
                say("unlocking her key).")
                say(
                    "    next personalised ad in France under it -> "
                    + expect(
                        check(Purpose.PERSONALISED_ADVERTISING, "FR", creative), "DENY REVOKED"
                    )
                )
                refused = verifier.check_file(
                    ad_file,
                    purpose=Purpose.PERSONALISED_ADVERTISING,
                    medium=Medium.ONLINE,
                    territory="FR",
                ).decision
                say("    the same ad file, checked again -> " + expect(refused, "DENY REVOKED"))
                say(
                    "    the per-use licence, untouched: personalised ad in France -> "
                    + expect(check(Purpose.PERSONALISED_ADVERTISING, "FR"), "ALLOW")
                )
                after = adv.statement()
                refund = next((x for x in after.lines if x.kind == "refund"), None)
                if refund is None:
                    raise StoryError("no refund after the revocation")
                say(
                    f"Acme Ads is refunded what it did not use, {eur(refund.amount)}, at once:"
                    f" {money(after)}."
                )
                kept = earnings(wallet)
                amount = f"{kept['available_minor'] / 100:.2f}"
                say(f"Alice keeps what she earned, {eur(kept['total_minor'])}, and will withdraw")
                say("it to her bank. She adds her IBAN as a payout destination first:")
                added = json.loads(wallet("payouts", "add", IBAN, "--json"))
                if added["state"] != "PAYOUT_DESTINATION_STATE_PENDING":
                    raise StoryError(f"a new payout destination is not pending: {added}")
                code, _, err = wallet.run("withdraw", amount, "--to", IBAN)
                if code == 0 or "PAYOUT_DESTINATION_PENDING" not in err:
                    raise StoryError(
                        f"a withdrawal to a pending destination was not refused: {err}"
                    )
                notice = next(
                    (x for x in wallet("inbox").splitlines() if x.startswith("Notice")), ""
                )
                say("Her inbox tells her (as it would of a destination a thief added):")
                for part in notice.split(": ", 1)[-1].split("; "):
                    say(f"    {part}")
                say(
                    "It is pending: a withdrawal to it now is refused (PAYOUT_DESTINATION_PENDING)."
                )
                say(
                    f"This exchange waits {PAYOUT_DELAY_HOURS * 3600:.0f} s (72 hours by default):"
                    " a thief with her laptop"
                )
                say("could not send her money to himself at once; she would see his destination")
                say("in her inbox and cancel it. Once it is usable, she withdraws:")
                time.sleep(max(int(added["usable_at"]) - time.time() + 1, 0))
                out = wallet("withdraw", amount, "--to", IBAN)
                say("    " + out.splitlines()[0])
                audit = json.loads(wallet("audit", "--json"))
                if audit["problems"] or (audit["your_licences"], audit["your_revocations"]) != (
                    2,
                    1,
                ):
                    raise StoryError(f"the audit of the public log went wrong: {audit}")
                say(
                    f"Her wallet audits the public log ({audit['log_size']} entries in a Merkle"
                    " tree under a signed"
                )
                say("checkpoint): her two licences are there, approved by her, and so is her")
                say(
                    f"revocation, signed by her: {audit['your_entries_found']} entries sealed to"
                    f" her account, found with her log key"
                )
                say(
                    f"(the exchange counts {audit['your_entries_stated']}); nobody else can"
                    " find or read them."
                )
                told = observed(
                    server,
                    {
                        "her key": PublicKey.from_text(key).raw,
                        "her pseudonym": parse_token(licence.token).holder_key,
                        "her photo's digest": hashlib.sha256(photo.read_bytes()).digest(),
                        "the licence's id": licence.licence_id,
                        "the file licence's id": creative.licence_id,
                        "her handle": b"alice",
                        "her name": b"Alice Martin",
                    },
                )
                say(
                    f"An outside observer reads the same {told.entries} entries: {told.sealed}"
                    " are sealed (a random tag, a"
                )
                say(
                    f"commitment and a box of {told.sizes} bytes), {told.clear} name(s) the"
                    " exchange's keys. Her key,"
                )
                say("her pseudonym, her photo's digest, the licence's id, her handle and her name")
                say("appear in none of them: the public record names nobody.")

        export = json.loads(wallet("export", "--json"))
        states = sorted(
            x["state"].removeprefix("LICENCE_STATE_").lower() for x in export["licences"]
        )
        say(
            f"Alice exports everything the exchange holds about her: {len(export['assets'])} "
            f"assets, {len(export['requests'])} requests, {len(export['licences'])} licences "
            f"({', '.join(states)}), {len(export.get('accesses', []))} accesses."
        )
    say("The exchange has stopped; its temporary directory is removed.")


@dataclass(frozen=True)
class Observed:
    """What an outsider sees in the public log."""

    entries: int
    sealed: int
    clear: int
    sizes: str


def observed(server: str, secrets: dict[str, bytes]) -> Observed:
    """Read the whole public log as anyone may (unsigned calls) and check that none of
    ``secrets`` appears in any entry; what it saw."""
    channel = grpc.insecure_channel(server)
    try:
        log = LogClient(SignedChannel(channel, None))
        size = int(log.checkpoint().note.splitlines()[1])
        raw = [e.data for e in log.entries(0, size)]
    finally:
        channel.close()
    for what, value in secrets.items():
        if value and any(value in entry for entry in raw):
            raise StoryError(f"{what} is in the public log")
    kinds = [transparency_pb2.LogEntry.FromString(e) for e in raw]
    boxes = sorted({len(k.sealed.box) for k in kinds if k.HasField("sealed")})
    sealed = sum(k.HasField("sealed") for k in kinds)
    return Observed(size, sealed, size - sealed, "/".join(str(b) for b in boxes))


def tell(told: Callable[[Path], None], prefix: str) -> int:
    """Tell a story in a fresh temporary directory (removed after); 0 if every step ended
    as it should, 1 if one did not, 130 on Ctrl-C (the exchange is stopped either way)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        try:
            told(Path(tmp))
        except StoryError as e:
            print(f"demo: the story went wrong: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("demo: interrupted; the exchange is stopped.", file=sys.stderr)
            return 130
    return 0


def main() -> int:
    """Tell the story; 0 if every step ended as it should."""
    return tell(story, "licentia-demo-")


if __name__ == "__main__":
    sys.exit(main())
