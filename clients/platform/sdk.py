"""The platform's SDK: :class:`Platform`, the client a publishing platform runs.

A platform registers once (its ``platform_id`` is the audience every presentation to it
must name), checks licences inline with the :class:`~licentia.clients.verifier.Verifier`
(:meth:`Platform.verifier`: the same channel, and a nonce store shared by all the platform's
instances so that a presentation replayed from one instance to another is refused), and
reports each use of a licence priced per use (:meth:`Platform.report_use`), which is what
the exchange charges the advertiser and pays the holder for.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from licentia.methods import path
from licentia.nonces import NonceStore
from licentia.scope import IntendedUse
from licentia.v1 import registry_pb2, verification_pb2

from ..party import PartyClient
from ..verifier import Verifier
from ..verifier.nonces import open_nonce_store

__all__ = ["Platform", "PlatformProfile", "UseReport"]

REGISTER_PLATFORM = path(registry_pb2, "RegisterPlatform")
REPORT_USE = path(verification_pb2, "ReportUse")


@dataclass(frozen=True, slots=True)
class PlatformProfile:
    """The platform as the exchange registered it."""

    platform_id: str
    name: str
    registered_at: int


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
