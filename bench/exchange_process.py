"""What the benches that drive a real exchange share: the exchange as its own process, and the
signed calls that set up its parties.

Not a benchmark itself. :class:`ExchangeProcess` runs ``licentia-server`` (the same entry
point, ``python -m licentia.services.server``) on ``127.0.0.1:0`` over a data directory it is
given, waits for the port it writes, and stops it with SIGTERM (the server drains), killing
it if it does not exit. The set-up helpers register a holder (the example photo, terms,
optionally a standing rule), advertisers, a platform, and credit balances as the exchange's
operator, each with one signed call (:class:`~licentia.clients.channel.SignedChannel`).

``bench_verifier.py`` and ``load.py`` use both; ``bench_server.py`` (its exchange is
in-process) uses the set-up helpers.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

from google.protobuf.message import Message

from licentia import pairwise
from licentia.clients.channel import SignedChannel
from licentia.examples import PHOTO_SHA256, typical_rule
from licentia.keys import PrivateKey, PublicKey
from licentia.methods import path
from licentia.scope import IntendedUse
from licentia.services.app import OPERATOR_KEY_FILE
from licentia.token import LicenceClaims, approve, sign_standing_rule
from licentia.v1 import exchange_pb2, ledger_pb2, licence_pb2, records_pb2, registry_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

DAY = 86400
#: The platform id the benches register and present licences to.
AUDIENCE = "benchplatform"
#: Longest wait for the server to bind its port, and to exit after SIGTERM.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
#: The licensed use, within the holder's terms and standing rule (:func:`typical_rule`).
USE = IntendedUse(
    DataCategory.IMAGE, Purpose.PERSONALISED_ADVERTISING, Medium.ONLINE, "FR", PHOTO_SHA256
)
#: What a request asks for: the photo, for advertising online in France.
SCOPE = licence_pb2.Scope(
    categories=cast("Any", [int(DataCategory.IMAGE)]),
    purposes=cast("Any", [int(Purpose.ADVERTISING)]),
    media=cast("Any", [int(Medium.ONLINE)]),
    territories=["FR"],
)
#: The holder's terms: image and name, marketing, online and social, the EU, 1.00 EUR a day.
TERMS = records_pb2.Terms(
    categories=cast("Any", [int(DataCategory.IMAGE), int(DataCategory.NAME)]),
    allowed_purposes=cast("Any", [int(Purpose.MARKETING)]),
    media=cast("Any", [int(Medium.ONLINE), int(Medium.SOCIAL)]),
    territories=["EU"],
    currency="EUR",
    price_per_day_minor=100,
    max_term_seconds=90 * DAY,
)
#: The term of the licences the benches ask for, and its price under :data:`TERMS`.
TERM_DAYS = 30
TERM_PRICE = TERM_DAYS * 100


class ExchangeProcess:
    """``licentia-server`` in its own process on ``127.0.0.1:0`` over ``data_dir``.

    Use it as a context manager: entering starts it and waits for its port (``SystemExit``
    if it does not come up), leaving stops it. The server's log lines (JSON, one per call)
    go to ``log`` when given, else nowhere.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        heartbeat_seconds: float = 0.5,
        log: Path | None = None,
        extra_args: Sequence[str] = (),
        processes: int = 1,
    ) -> None:
        self.data_dir = data_dir
        #: ``--processes``: 1 (one process, what the benches measure) unless a bench asks.
        self.processes = processes
        self.heartbeat_seconds = heartbeat_seconds
        self.log = log
        self.extra_args = tuple(extra_args)
        self.port_file = data_dir.parent / f"{data_dir.name}.port"
        self.address = ""
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self._popen is not None
        return self._popen.pid

    @property
    def running(self) -> bool:
        """True while the server process has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        """Start the server and wait until it listens."""
        self._log_file = self.log.open("wb") if self.log is not None else None
        self.port_file.unlink(missing_ok=True)  # a restart on the same data directory
        self._popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "licentia.services.server",
                "--data-dir",
                str(self.data_dir),
                "--listen",
                "127.0.0.1:0",
                "--port-file",
                str(self.port_file),
                "--heartbeat-seconds",
                str(self.heartbeat_seconds),
                "--processes",
                str(self.processes),
                *self.extra_args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log_file if self._log_file is not None else subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not (self.port_file.exists() and self.port_file.read_text().strip()):
            if self._popen.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the exchange did not start")
            time.sleep(0.05)
        self.address = f"127.0.0.1:{self.port_file.read_text().strip()}"

    def stop(self) -> int | None:
        """SIGTERM (the server drains), then SIGKILL if it has not exited in time; its exit
        status (None if it was never started). Idempotent."""
        popen, self._popen = self._popen, None
        try:
            if popen is None:
                return None
            popen.send_signal(signal.SIGTERM)
            try:
                return popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                popen.kill()
                return popen.wait()
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def __enter__(self) -> ExchangeProcess:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- set-up calls ------------------------------------------------------------------------------


def call(rpc: SignedChannel, method: str, request: Message, response_cls: type[Any]) -> Any:
    """A signed unary call; ``method`` is a path from :func:`licentia.methods.path`."""
    return rpc.unary(method, request, response_cls)


def register_holder(rpc: SignedChannel, handle: str, terms: records_pb2.Terms = TERMS) -> None:
    """Register the key of ``rpc`` as a holder with the example photo (its digest) and
    ``terms``. Its display name is ``handle``, shown in offers (the holder chose it), which
    is how :func:`find_offer` finds it: an offer names nobody otherwise."""
    call(
        rpc,
        path(registry_pb2, "RegisterHolder"),
        registry_pb2.RegisterHolderRequest(
            handle=handle, display_name=handle, show_display_name=True
        ),
        registry_pb2.RegisterHolderResponse,
    )
    call(
        rpc,
        path(registry_pb2, "DeclareAsset"),
        registry_pb2.DeclareAssetRequest(
            category=cast("Any", int(DataCategory.IMAGE)), sha256=PHOTO_SHA256, label="photo"
        ),
        registry_pb2.DeclareAssetResponse,
    )
    call(
        rpc,
        path(registry_pb2, "SetTerms"),
        registry_pb2.SetTermsRequest(terms=terms),
        registry_pb2.SetTermsResponse,
    )


def add_standing_rule(rpc: SignedChannel, holder: PrivateKey) -> None:
    """The holder signs :func:`typical_rule`: requests within it are issued at once."""
    consent = sign_standing_rule(holder, typical_rule(holder, int(time.time())))
    call(
        rpc,
        path(exchange_pb2, "AddStandingRule"),
        exchange_pb2.AddStandingRuleRequest(
            consent=licence_pb2.StandingConsent(
                rule=consent.rule_bytes, holder_signature=consent.signature
            )
        ),
        exchange_pb2.AddStandingRuleResponse,
    )


def register_advertiser(rpc: SignedChannel, organisation: str) -> None:
    """Register the key of ``rpc`` as an advertiser in France."""
    call(
        rpc,
        path(registry_pb2, "RegisterAdvertiser"),
        registry_pb2.RegisterAdvertiserRequest(organisation=organisation, country="FR"),
        registry_pb2.RegisterAdvertiserResponse,
    )


def register_platform(rpc: SignedChannel, platform_id: str = AUDIENCE) -> None:
    """Register the key of ``rpc`` as the platform ``platform_id``."""
    call(
        rpc,
        path(registry_pb2, "RegisterPlatform"),
        registry_pb2.RegisterPlatformRequest(platform_id=platform_id, name="Bench platform"),
        registry_pb2.RegisterPlatformResponse,
    )


def operator_key(data_dir: Path) -> PrivateKey:
    """The operator key the exchange over ``data_dir`` created (the only one that deposits)."""
    return PrivateKey.from_seed((data_dir / OPERATOR_KEY_FILE).read_bytes())


def deposit(operator: SignedChannel, advertiser: PublicKey, amount: int, reference: str) -> int:
    """Credit ``amount`` minor units to ``advertiser`` as the operator; the balance after."""
    resp = call(
        operator,
        path(ledger_pb2, "Deposit"),
        ledger_pb2.DepositRequest(
            advertiser_key=advertiser.raw, amount_minor=amount, reference=reference
        ),
        ledger_pb2.DepositResponse,
    )
    return int(resp.balance_minor)


@dataclass(frozen=True)
class OfferRefs:
    """One advertiser's references to a holder and her photo (from its SearchOffers)."""

    offer_ref: bytes
    photo_ref: bytes


def find_offer(rpc: SignedChannel, name: str) -> OfferRefs:
    """The references the advertiser of ``rpc`` has for the holder :func:`register_holder`
    registered as ``name``: the offer showing that display name, and its photo."""
    token = ""
    while True:
        page = call(
            rpc,
            path(exchange_pb2, "SearchOffers"),
            exchange_pb2.SearchOffersRequest(page_size=100, page_token=token),
            exchange_pb2.SearchOffersResponse,
        )
        for offer in page.offers:
            if offer.display_name == name:
                photo = next(
                    a for a in offer.offered_assets if a.category == int(DataCategory.IMAGE)
                )
                return OfferRefs(offer.offer_ref, photo.asset_ref)
        token = page.next_page_token
        if not token:
            raise LookupError(f"no offer shows the name {name!r}")


def licence_request(refs: OfferRefs, now: int) -> exchange_pb2.RequestLicenceRequest:
    """A request :func:`typical_rule` covers: the photo within :data:`SCOPE`, non-exclusive,
    :data:`TERM_DAYS` days from ``now`` at the holder's price, at most 10 uses, for the
    advertiser whose ``refs`` they are."""
    return exchange_pb2.RequestLicenceRequest(
        offer_ref=refs.offer_ref,
        asset_refs=[refs.photo_ref],
        scope=SCOPE,
        not_before=now,
        not_after=now + TERM_DAYS * DAY,
        max_uses=10,
        offered_price_minor=TERM_PRICE,
    )


def pairwise_approval(
    holder: PrivateKey, advertiser_account: bytes, request_id: bytes, claims: bytes
) -> tuple[exchange_pb2.ApproveRequestRequest, bytes]:
    """ApproveRequest as a holder's wallet sends it: the pending ``claims`` rebound to her
    pairwise key for the advertiser's account (her holder secret taken from her device
    seed, as an old wallet's is), signed by it, with its proof; and the claims it signed."""
    key = pairwise.pairwise_key(
        pairwise.holder_secret_from_device_seed(holder.seed), advertiser_account
    )
    bound = replace(LicenceClaims.decode(claims), holder=key.public).encode()
    return (
        exchange_pb2.ApproveRequestRequest(
            request_id=request_id,
            holder_signature=approve(key, bound).signature,
            consent_key=key.public.raw,
            consent_key_proof=pairwise.pseudonym_proof(key, holder.public.raw, advertiser_account),
        ),
        bound,
    )
