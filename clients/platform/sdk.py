"""The platform's SDK: :class:`Platform`, the client a publishing platform runs.

A platform registers once (its ``platform_id`` is the audience every presentation to it
must name), checks licences inline with the :class:`~licentia.clients.verifier.Verifier`
(:meth:`Platform.verifier`: the same channel, and a nonce store shared by all the platform's
instances so that a presentation replayed from one instance to another is refused), and
reports each use of a licence priced per use (:meth:`Platform.report_use`), which is what
the exchange charges the advertiser and pays the holder for. It checks files too: a file's
Content Credentials and licence (:meth:`Platform.check_file`), and an upload, held back when
it shows a registered person's asset with no licence (:meth:`Platform.check_upload`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import grpc  # type: ignore[import-untyped]

from licentia.content import MAX_FILE_BYTES
from licentia.errors import Reason
from licentia.methods import path
from licentia.nonces import NonceStore
from licentia.scope import IntendedUse
from licentia.v1 import registry_pb2, verification_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..channel import ExchangeError
from ..party import PartyClient
from ..shown import shown
from ..verifier import Verifier
from ..verifier.files import FileCheck, FileSource
from ..verifier.nonces import open_nonce_store

__all__ = ["MAX_ASSET_DIGESTS", "Platform", "PlatformProfile", "UploadCheck", "UseReport"]

REGISTER_PLATFORM = path(registry_pb2, "RegisterPlatform")
REPORT_USE = path(verification_pb2, "ReportUse")
CHECK_ASSET_DIGESTS = path(verification_pb2, "CheckAssetDigests")
#: The most digests one ``CheckAssetDigests`` call carries (the exchange's cap).
MAX_ASSET_DIGESTS = 64
#: Reasons that say a file could not be checked now, not that it fails: the verifier's view
#: of revocations is stale, the check failed inside, or a service it needs is away.
_RETRY_REASONS = frozenset({Reason.STATUS_STALE, Reason.INTERNAL, Reason.UNAVAILABLE})


@dataclass(frozen=True, slots=True)
class PlatformProfile:
    """The platform as the exchange registered it."""

    platform_id: str
    name: str
    registered_at: int


@dataclass(frozen=True, slots=True)
class UploadCheck:
    """An uploaded file's fate (:meth:`Platform.check_upload`): ``outcome`` is ``allow``,
    ``deny``, ``held`` (a registered person's asset with no licence), ``no_licence``, or
    ``retry`` (it could not be checked now: hold it and check again); ``check`` the file
    check behind it (reasons, licence, organisation)."""

    outcome: Literal["allow", "deny", "held", "no_licence", "retry"]
    check: FileCheck

    def lines(self) -> list[str]:
        """The outcome for people, then the file check's lines (:meth:`FileCheck.lines`:
        what the file says sanitised, "signed by" only for trusted credentials)."""
        return [shown(f"upload: {self.outcome}", one_line=True), *self.check.lines()]

    @property
    def reasons(self) -> tuple[Reason, ...]:
        """The file check's reasons (empty on ``allow``)."""
        return self.check.decision.reasons


@dataclass(frozen=True, slots=True)
class UseReport:
    """The exchange's count after a reported use."""

    licence_id: bytes
    #: Uses counted so far, this one included.
    uses: int
    #: The licence's most uses (0: no limit).
    max_uses: int
    #: Unix seconds at which the use was recorded (the first time, on a retry).
    recorded_at: int
    #: The report's id: a retry with it counts once.
    report_id: bytes


class Platform(PartyClient):
    """A platform's client of the exchange, over ``channel`` with ``key`` (every call signed
    with it). Use it as a context manager, or call :meth:`close`."""

    def register(self, platform_id: str, name: str) -> PlatformProfile:
        """Register this key as the platform ``platform_id`` (3-32 of ``a-z0-9_-``, unique
        on the exchange) named ``name``. Raises
        :class:`~licentia.clients.channel.ExchangeError` with the exchange's reason (an id
        taken, a key registered already, …)."""
        resp = self._rpc.unary(
            REGISTER_PLATFORM,
            registry_pb2.RegisterPlatformRequest(platform_id=platform_id, name=name),
            registry_pb2.RegisterPlatformResponse,
        )
        return PlatformProfile(
            resp.profile.handle, resp.profile.display_name, resp.profile.registered_at
        )

    def verifier(
        self,
        platform_id: str,
        *,
        nonces: NonceStore | str | Path | None = None,
        **options: Any,
    ) -> Verifier:
        """The inline :class:`~licentia.clients.verifier.Verifier` for ``platform_id`` on
        this client's channel (not started: use it as a context manager or call ``start``).

        ``nonces`` remembers presentation nonces: a :class:`~licentia.nonces.NonceStore`, or
        where a shared one lives (an SQLite file path, or a ``postgresql://`` DSN; see
        :mod:`licentia.clients.verifier.nonces`); None keeps them in this process's memory,
        which is enough for a platform of one instance only. ``options`` are the
        ``Verifier``'s (``staleness_seconds``, ``backoff``, …). A store opened here is
        closed with the verifier, or at once when the ``Verifier`` refuses its arguments
        (``ValueError`` for a bad ``platform_id``, ``TypeError`` for an unknown option).
        """
        if isinstance(nonces, str | Path):  # opened here, closed with the verifier
            store = open_nonce_store(nonces)
            try:
                return Verifier(
                    self._channel, platform_id, nonces=store, close_nonces=True, **options
                )
            except BaseException:  # a bad platform_id, an unknown option: not left open
                store.close()
                raise
        return Verifier(self._channel, platform_id, nonces=nonces, **options)

    def check_asset_digests(self, digests: Sequence[bytes]) -> list[bool]:
        """For each SHA-256 digest, whether some holder declared an asset with it
        (``CheckAssetDigests``, :data:`MAX_ASSET_DIGESTS` per call: a longer list is asked
        in several). The exchange never says whose. Raises ``ExchangeError`` (also for an
        answer with another number of bits than digests asked)."""
        out: list[bool] = []
        for at in range(0, len(digests), MAX_ASSET_DIGESTS):
            resp = self._rpc.unary(
                CHECK_ASSET_DIGESTS,
                verification_pb2.CheckAssetDigestsRequest(
                    sha256=list(digests[at : at + MAX_ASSET_DIGESTS])
                ),
                verification_pb2.CheckAssetDigestsResponse,
            )
            asked = len(digests[at : at + MAX_ASSET_DIGESTS])
            if len(resp.declared) != asked:  # one bit per digest, or no answer at all
                raise ExchangeError(
                    Reason.INTERNAL,
                    grpc.StatusCode.INTERNAL,
                    f"CheckAssetDigests answered {len(resp.declared)} bits for {asked} digests",
                )
            out.extend(bool(d) for d in resp.declared)
        return out

    def check_file(
        self,
        verifier: Verifier,
        source: FileSource,
        *,
        purpose: Purpose,
        medium: Medium,
        territory: str,
        category: DataCategory | None = None,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> FileCheck:
        """A file's Content Credentials and licence checked for a use by ``verifier`` (this
        platform's, started): :meth:`Verifier.check_file`."""
        return verifier.check_file(
            source,
            purpose=purpose,
            medium=medium,
            territory=territory,
            category=category,
            max_bytes=max_bytes,
        )

    def check_upload(
        self,
        verifier: Verifier,
        path: FileSource,
        *,
        purpose: Purpose,
        medium: Medium,
        territory: str,
        category: DataCategory | None = None,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> UploadCheck:
        """What to do with an uploaded file (docs/operations.md, "Checking uploads"):
        ``allow`` (it carries a licence valid for the use), ``deny`` (it carries a Licentia
        manifest that fails, or it is over the cap or unreadable and not a declared asset:
        its reasons), ``held`` (no licence, and its bytes are an asset a registered person
        declared: hold it back), ``no_licence`` (no licence, and not a declared asset:
        the platform's policy decides), or ``retry`` (it could not be checked now: the
        verifier's view of revocations is stale, ``STATUS_STALE``, or the check failed
        inside, ``INTERNAL``, or a service was away, ``UNAVAILABLE``: hold the file and check
        it again; never a ``deny`` that looks final).

        Never raises for bad content; a ``held`` answer needs the exchange
        (``CheckAssetDigests``): when it cannot answer, ``ExchangeError`` is raised rather
        than a guess, and the platform should hold the file and try again."""
        checked = self.check_file(
            verifier,
            path,
            purpose=purpose,
            medium=medium,
            territory=territory,
            category=category,
            max_bytes=max_bytes,
        )
        if checked.allowed:
            return UploadCheck("allow", checked)
        reasons = checked.decision.reasons
        if reasons and all(r in _RETRY_REASONS for r in reasons):
            return UploadCheck("retry", checked)
        if checked.carries_licence or not checked.sha256:  # a licence that fails; over the cap
            return UploadCheck("deny", checked)
        # No licence (no manifest, another's, or a file the C2PA reader cannot read at all):
        # a registered person's asset is held back whatever else is wrong with the file.
        (declared,) = self.check_asset_digests([checked.sha256])
        if declared:
            return UploadCheck("held", checked)
        return UploadCheck("no_licence" if checked.no_licence else "deny", checked)

    def report_use(
        self,
        token: str,
        presentation: str,
        use: IntendedUse,
        *,
        report_id: bytes | None = None,
    ) -> UseReport:
        """Report one ``use`` of the licence ``token`` that the licensee presented with
        ``presentation`` (for per-use pricing and ``max_uses``). ``report_id`` (16 bytes, a
        fresh one by default) makes a retry count once: retry with the returned
        ``UseReport.report_id``. Raises ``ExchangeError`` (``USES_EXHAUSTED``, ``REVOKED``,
        ``IDEMPOTENCY_KEY_REUSED``, …)."""
        rid = secrets.token_bytes(16) if report_id is None else report_id
        resp = self._rpc.unary(
            REPORT_USE,
            verification_pb2.ReportUseRequest(
                report_id=rid, token=token, presentation=presentation, use=use.to_proto()
            ),
            verification_pb2.ReportUseResponse,
        )
        return UseReport(resp.licence_id, resp.uses, resp.max_uses, resp.recorded_at, rid)
