"""What every party's SDK client shares: its key, its signed channel, connecting and closing.

:class:`PartyClient` (sync) and :class:`AsyncPartyClient` (asyncio) hold a party's key and a
channel that signs every call with it over the exact bytes sent; the advertiser and holder
SDKs add their calls on top. A client owns its channel: use it as a context manager, or call
``close``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]

from licentia import keyset, pairwise
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey, PublicKey
from licentia.transport import tls
from licentia.v1 import accounts_pb2

from . import accounts
from .accounts import VerifiedKeySet
from .aio_channel import AsyncSignedChannel
from .channel import ExchangeError, SignedChannel

__all__ = ["CHANNEL_OPTIONS", "AsyncPartyClient", "PartyClient"]

#: Options of the channels a client opens itself (``connect``): messages up to 16 MiB back
#: (a page of licences, an export), keepalive pings once a minute.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
)


#: How many times :meth:`PartyClient.recover` reads the set again after another change came
#: first (a thief's device racing the recovery).
RECOVERY_ATTEMPTS = 10


def _now() -> int:
    return int(time.time())


class PartyClient:
    """A party's client of the exchange, over ``channel`` with ``key``.

    ``timeout`` is the deadline of each unary call in seconds; ``clock`` gives the Unix
    seconds of request signatures (and presentations).
    """

    def __init__(
        self,
        channel: grpc.Channel,
        key: PrivateKey,
        *,
        timeout: float = 10.0,
        clock: Callable[[], int] = _now,
        account: bytes = b"",
    ) -> None:
        self.key = key
        self.clock = clock
        #: The account this key belongs to (its id): the key itself until the exchange says
        #: otherwise (:meth:`key_set`, :meth:`join_pairing`), or as given.
        self.account = account or key.public.raw
        self._channel = channel
        self._rpc = SignedChannel(channel, key, clock=clock, timeout=timeout)

    @classmethod
    def connect(
        cls,
        address: str,
        key: PrivateKey,
        *,
        tls_ca: bytes | None = None,
        insecure: bool = False,
        timeout: float = 10.0,
        account: bytes = b"",
    ) -> Self:
        """A client of the exchange at ``address`` (``host:port``), over TLS: checked
        against ``tls_ca`` (PEM) when given, else against the system's CA store. In plain
        text only with ``insecure=True`` (a local exchange), or when ``address`` is a
        loopback one (``127.0.0.0/8``, ``::1``, ``localhost``) and no ``tls_ca`` is given
        (see :mod:`licentia.transport.tls`). ``account`` when ``key`` is not the account's
        own (a second device)."""
        channel = tls.channel(address, tls_ca=tls_ca, insecure=insecure, options=CHANNEL_OPTIONS)
        return cls(channel, key, timeout=timeout, account=account)

    @property
    def public_key(self) -> PublicKey:
        """This party's public key (a holder's: the one licences in her name carry; an
        advertiser's: the licensee that licences name)."""
        return self.key.public

    def close(self) -> None:
        """Close the channel (open streams end)."""
        self._channel.close()

    # -- the account's key set ---------------------------------------------------------------
    def key_set_answer(self) -> accounts_pb2.GetKeySetResponse:
        """The exchange's answer to GetKeySet as received, *not* checked (an audit compares
        it with the public log itself; everything else uses :meth:`key_set`)."""
        return self._rpc.unary(
            accounts.GET_KEY_SET, accounts_pb2.GetKeySetRequest(), accounts_pb2.GetKeySetResponse
        )

    def key_set(self) -> VerifiedKeySet:
        """This party's account's key set, its chain replayed and checked from the account
        id (:func:`.accounts.verified`); remembers the account id (:attr:`account`)."""
        answer = self.key_set_answer()
        found = accounts.verified(answer)
        self.account = answer.account
        return found

    def change_key_set(
        self, change: accounts_pb2.SignedKeySetChange
    ) -> accounts_pb2.ChangeKeySetResponse:
        """Send one signed change of the account's set (KEY_SET_CONFLICT when another came
        first: read the set again)."""
        return self._rpc.unary(
            accounts.CHANGE_KEY_SET,
            accounts_pb2.ChangeKeySetRequest(change=change),
            accounts_pb2.ChangeKeySetResponse,
        )

    def add_recovery_key(
        self, recovery: PrivateKey, name: str = "paper"
    ) -> accounts_pb2.ChangeKeySetResponse:
        """Add ``recovery`` (a holder's: derived from her paper phrase) as the account's
        recovery key, signed by this key."""
        current = self.key_set().current
        change = accounts.add_key(
            current, self.key, recovery, role=keyset.RECOVERY, name=name, at=self.clock()
        )
        return self.change_key_set(change)

    def add_device(self, device: PrivateKey, name: str) -> accounts_pb2.ChangeKeySetResponse:
        """Add ``device`` (a key this program holds too) to the account, signed by this key."""
        change = accounts.add_key(
            self.key_set().current, self.key, device, name=name, at=self.clock()
        )
        return self.change_key_set(change)

    def remove_key(self, public: bytes, *, compromised: bool) -> accounts_pb2.ChangeKeySetResponse:
        """Remove the device key ``public`` from the account, signed by this key: as
        compromised (it stops at once everywhere; a licensee key's live licences are
        revoked) or as retired (what it signed stays valid)."""
        change = accounts.remove_key(
            self.key_set().current, self.key, public, compromised=compromised, at=self.clock()
        )
        return self.change_key_set(change)

    def recover(
        self,
        device: PrivateKey,
        name: str,
        *,
        compromised: bool = True,
        new_recovery: tuple[PrivateKey, str] | None = None,
    ) -> accounts_pb2.ChangeKeySetResponse:
        """With this client's key being the account's recovery key: replace every device
        with ``device`` (the old ones leave as compromised unless told otherwise), and the
        recovery key with ``new_recovery`` when given.

        A thief's device may be changing the set at the same time: when another change
        comes first (KEY_SET_CONFLICT) the set is read again and the recovery made anew over
        it, up to :data:`RECOVERY_ATTEMPTS` times; a device cannot touch the recovery key,
        so the recovery wins as soon as it is the next change."""
        for attempt in range(1, RECOVERY_ATTEMPTS + 1):
            change = accounts.recover(
                self.key_set().current,
                self.key,
                [(device, name)],
                compromised=compromised,
                at=self.clock(),
                new_recovery=new_recovery,
            )
            try:
                return self.change_key_set(change)
            except ExchangeError as e:
                if e.reason != Reason.KEY_SET_CONFLICT or attempt == RECOVERY_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def start_pairing(self) -> accounts_pb2.StartPairingResponse:
        """Open a pairing: the code to show, for a new device to join with."""
        return self._rpc.unary(
            accounts.START_PAIRING,
            accounts_pb2.StartPairingRequest(),
            accounts_pb2.StartPairingResponse,
        )

    def pairing(self, code: str) -> accounts_pb2.GetPairingResponse:
        """The pairing under ``code`` as it stands (its joined key, once one joined)."""
        return self._rpc.unary(
            accounts.GET_PAIRING,
            accounts_pb2.GetPairingRequest(code=code),
            accounts_pb2.GetPairingResponse,
        )

    def _joined(self, code: str, expected: bytes | None) -> accounts_pb2.AccountKey:
        joined = self.pairing(code)
        if not joined.HasField("key"):
            raise LicentiaError(Reason.NOT_FOUND, "no device has joined this pairing yet")
        if expected is not None and joined.key.public_key != expected:
            # Not the key the person checked the fingerprint of: the exchange changed it.
            raise LicentiaError(
                Reason.KEY_SET_UNAUTHORISED, "the pairing now names another key than the one shown"
            )
        return joined.key

    def approve_pairing(
        self, code: str, expected: bytes | None = None
    ) -> accounts_pb2.ChangeKeySetResponse:
        """Add the key that joined the pairing ``code`` (NOT_FOUND while none has), which
        must be ``expected`` (the key whose fingerprint the person confirmed), if given."""
        joined = self._joined(code, expected)
        change = accounts.add_key(self.key_set().current, self.key, joined, at=self.clock())
        return self.change_key_set(change)

    def seal_pairing(
        self, code: str, holder_secret: bytes, expected: bytes | None = None
    ) -> accounts_pb2.SealPairingResponse:
        """Once the key that joined the pairing ``code`` is a device of the account, as its
        chain verifies (:meth:`approve_pairing`), hand it ``holder_secret`` sealed to that
        key and signed by this one (docs/token-format.md §1b): the exchange relays the
        ciphertext only. ``expected``: the key the person confirmed (else the joined key
        must already be in the verified set, which it is checked against anyway)."""
        joined = self._joined(code, expected)
        member = self.key_set().current.key(joined.public_key)
        if member is None or not member.is_device:
            raise LicentiaError(
                Reason.KEY_SET_UNAUTHORISED, "the joined key is not a device of your account"
            )
        sealed = pairwise.seal_secret(holder_secret, joined.public_key, self.key, code)
        return self._rpc.unary(
            accounts.SEAL_PAIRING,
            accounts_pb2.SealPairingRequest(code=code, sealed_secret=sealed),
            accounts_pb2.SealPairingResponse,
        )

    def pairing_secret(self, code: str) -> bytes | None:
        """On the device that joined the pairing ``code`` (once it is in the account): the
        holder secret the old device sealed to this client's key, opened; ``None`` while
        none was left. ``LicentiaError`` when it does not open with this key, or was not
        signed by a device of this account as its chain verifies (the exchange relaying it
        cannot hand this device a secret of its own)."""
        sealed = self.pairing(code).sealed_secret
        if not sealed:
            return None
        secret, signer = pairwise.open_secret(sealed, self.key, code)
        member = self.key_set().current.key(signer)
        if member is None or not member.is_device:
            raise LicentiaError(
                Reason.BAD_SIGNATURE, "the secret was not sealed by a device of your account"
            )
        return secret

    def join_pairing(self, code: str, name: str) -> accounts_pb2.JoinPairingResponse:
        """On a new device (this client's key, in no account yet): join the pairing shown
        on an old one; then the old one approves it (:meth:`approve_pairing`)."""
        entry = accounts_pb2.AccountKey(
            public_key=self.key.public.raw, role=keyset.DEVICE, name=name
        )
        first = self._rpc.unary(
            accounts.JOIN_PAIRING,
            accounts_pb2.JoinPairingRequest(code=code, key=entry),
            accounts_pb2.JoinPairingResponse,
        )
        entry.proof = keyset.possession_proof(self.key, first.account)
        joined = self._rpc.unary(
            accounts.JOIN_PAIRING,
            accounts_pb2.JoinPairingRequest(code=code, key=entry),
            accounts_pb2.JoinPairingResponse,
        )
        self.account = joined.account
        return joined

    def log_key(self) -> accounts_pb2.GetLogKeyResponse:
        """The account's log key and how many log entries the exchange says are about the
        account (GetLogKey): what its audit needs to find and open its sealed entries in the
        public log (:class:`~licentia.clients.auditor.holder.HolderLog`). The key is a
        secret of the account: whoever holds it can read the account's entries."""
        return self._rpc.unary(
            accounts.GET_LOG_KEY, accounts_pb2.GetLogKeyRequest(), accounts_pb2.GetLogKeyResponse
        )

    def consents(self, public: bytes, since: int = 0) -> accounts_pb2.ListConsentsResponse:
        """The live licences and standing rules that the key ``public`` of this holder's
        account consented to since ``since``."""
        return self._rpc.unary(
            accounts.LIST_CONSENTS,
            accounts_pb2.ListConsentsRequest(public_key=public, since=since),
            accounts_pb2.ListConsentsResponse,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncPartyClient:
    """A party's asyncio client of the exchange, over ``channel`` with ``key`` (as
    :class:`PartyClient`; use it as an async context manager, or await :meth:`close`)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        key: PrivateKey,
        *,
        timeout: float = 10.0,
        clock: Callable[[], int] = _now,
        account: bytes = b"",
    ) -> None:
        self.key = key
        self.clock = clock
        #: The account this key belongs to (as :attr:`PartyClient.account`).
        self.account = account or key.public.raw
        self._channel = channel
        self._rpc = AsyncSignedChannel(channel, key, clock=clock, timeout=timeout)

    @classmethod
    def connect(
        cls,
        address: str,
        key: PrivateKey,
        *,
        tls_ca: bytes | None = None,
        insecure: bool = False,
        timeout: float = 10.0,
        account: bytes = b"",
    ) -> Self:
        """A client of the exchange at ``address`` (``host:port``), secured as
        :meth:`PartyClient.connect` says (TLS by default; plain text with ``insecure=True``
        or on a loopback address); ``account`` as there. Call it inside the event loop that
        will use the client."""
        channel = tls.aio_channel(
            address, tls_ca=tls_ca, insecure=insecure, options=CHANNEL_OPTIONS
        )
        return cls(channel, key, timeout=timeout, account=account)

    @property
    def public_key(self) -> PublicKey:
        """This party's public key."""
        return self.key.public

    async def close(self) -> None:
        """Close the channel (open streams end)."""
        await self._channel.close()

    # -- the account's key set ---------------------------------------------------------------
    async def key_set(self) -> VerifiedKeySet:
        """As :meth:`PartyClient.key_set`."""
        answer = await self._rpc.unary(
            accounts.GET_KEY_SET, accounts_pb2.GetKeySetRequest(), accounts_pb2.GetKeySetResponse
        )
        found = accounts.verified(answer)
        self.account = answer.account
        return found

    async def log_key(self) -> accounts_pb2.GetLogKeyResponse:
        """As :meth:`PartyClient.log_key`."""
        answer: accounts_pb2.GetLogKeyResponse = await self._rpc.unary(
            accounts.GET_LOG_KEY, accounts_pb2.GetLogKeyRequest(), accounts_pb2.GetLogKeyResponse
        )
        return answer

    async def change_key_set(
        self, change: accounts_pb2.SignedKeySetChange
    ) -> accounts_pb2.ChangeKeySetResponse:
        """As :meth:`PartyClient.change_key_set`."""
        return await self._rpc.unary(
            accounts.CHANGE_KEY_SET,
            accounts_pb2.ChangeKeySetRequest(change=change),
            accounts_pb2.ChangeKeySetResponse,
        )

    async def add_device(self, device: PrivateKey, name: str) -> accounts_pb2.ChangeKeySetResponse:
        """As :meth:`PartyClient.add_device`."""
        current = (await self.key_set()).current
        return await self.change_key_set(
            accounts.add_key(current, self.key, device, name=name, at=self.clock())
        )

    async def remove_key(
        self, public: bytes, *, compromised: bool
    ) -> accounts_pb2.ChangeKeySetResponse:
        """As :meth:`PartyClient.remove_key`."""
        current = (await self.key_set()).current
        change = accounts.remove_key(
            current, self.key, public, compromised=compromised, at=self.clock()
        )
        return await self.change_key_set(change)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
