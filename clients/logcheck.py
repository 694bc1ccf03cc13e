"""Checking the exchange's public log from outside: the pieces an auditor or a wallet needs.

Everything here trusts only two things: the log's verifier key (a C2SP vkey, obtained from
the exchange's operator out of band — never from the exchange's own ``verifier_key``
answer) and the protocol core (:mod:`licentia.merkle`, :mod:`licentia.checkpoint`,
:mod:`licentia.token`, :mod:`licentia.keys`). What the exchange sends is data to check:

- :class:`LogKey` verifies a checkpoint note against the pinned key and origin;
- :class:`LogClient` fetches the checkpoint, entries ``[start, end)`` in pages of
  :data:`PAGE_SIZE`, and consistency proofs, refusing a stream that skips or repeats;
- :func:`prove_consistency` checks that a new checkpoint extends one trusted before;
- :class:`Frontier` recomputes the tree incrementally from the entries (with
  :func:`licentia.merkle.completed_nodes`), keeping only the O(log n) complete subtrees a
  later run needs to go on, and :func:`locate_divergence` finds where entries stop
  matching a signed root;
- :func:`decode_entry`, :class:`LoggedKeys`, :func:`check_licence` and
  :func:`check_revocation` check what each clear entry says (an entry from before token v2,
  or the plaintext of a sealed entry its account opened): both signatures of a licence and
  the holder's consent, the exchange's rules, and that a revocation was signed by the holder;
- :func:`check_sealed_form` checks what anyone can check of a sealed entry (its form: a
  sealed entry names nobody, so its contents are the account's to check);
- :func:`check_logged` is the licensee's (or a platform's) check that one token is in the
  log: the entry at the token's promised index, proved included in a checkpoint signed by
  the pinned key, commits to exactly that token.

Findings are :class:`Finding` values (a stable ``kind`` and a message for people); nothing
here raises for a bad entry. Network failures surface as
:class:`~licentia.clients.channel.ExchangeError`, and a stream that does not deliver what
was asked for as :class:`LogServeError`.

Why one module of this size: these pieces are trusted only together (a recomputed frontier
means something only against a checkpoint proved consistent with one pinned before), and the
auditor and the wallet use them together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from google.protobuf.message import DecodeError

from licentia import keys, merkle, sealed
from licentia.checkpoint import Checkpoint, open_checkpoint, parse_vkey
from licentia.encoding import b64url_decode, parse_canonical
from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKey, PublicKey
from licentia.methods import path
from licentia.request import MAX_METHOD_CHARS, request_payload
from licentia.token import (
    DEFAULT_MAX_TERM_SECONDS,
    LICENCE_ID_BYTES,
    MAX_TOKEN_CHARS,
    TOKEN_PREFIXES,
    StandingConsent,
    StandingRule,
    UnverifiedLicence,
    authenticate,
    parse_token,
    salted_digest,
)
from licentia.v1 import (
    accounts_pb2,
    licence_pb2,
    licences_pb2,
    registry_pb2,
    transparency_pb2,
)

from .channel import ExchangeError, ExchangeUnavailable, SignedChannel

GET_CHECKPOINT = path(transparency_pb2, "GetCheckpoint")
GET_ENTRIES = path(transparency_pb2, "GetEntries")
GET_CONSISTENCY_PROOF = path(transparency_pb2, "GetConsistencyProof")
GET_INCLUSION_PROOF = path(transparency_pb2, "GetInclusionProof")
#: The calls a holder signs to end a licence, by termination cause.
REVOKE_METHOD = path(licences_pb2, "RevokeLicence")
ERASE_METHOD = path(registry_pb2, "EraseAssets")
#: The call a holder signs to delete her account (it revokes every licence of hers, ERASED).
DELETE_ACCOUNT_METHOD = path(registry_pb2, "DeleteAccount")
CHANGE_KEY_SET_METHOD = path(accounts_pb2, "ChangeKeySet")

#: Whether two keys are of one account (as the log's key-set chains show): the holder's
#: revocation may be signed by any of her devices, not only the one that consented.
SameAccount = Callable[[bytes, bytes], bool]


def _same_key(a: bytes, b: bytes) -> bool:
    return a == b


#: Entries asked for per GetEntries call (the most the exchange serves at once).
PAGE_SIZE = 1000
#: The largest entry accepted: a token is at most 4 KiB, a logged call's body at most the
#: exchange's 64 KiB request cap; anything bigger is flagged (and still hashed).
MAX_ENTRY_BYTES = 256 * 1024
#: How far (seconds) a revocation's time may be from the timestamp of the holder's call
#: that caused it. The exchange accepts calls signed within 60 s of its clock.
REVOCATION_CLOCK_SLACK = 300
#: The longest advertised verifier key echoed back to a person (it is never trusted).
MAX_ADVERTISED_KEY_CHARS = 512
#: At most this many erased digests are read from a logged EraseAssets call.
MAX_ERASED_DIGESTS = 1000


class LogServeError(LicentiaError):
    """The exchange did not serve what its signed checkpoint promises (an entry missing,
    out of order, or one too many): the log cannot be audited as served."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.INVALID_REQUEST, message)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in the log: a stable ``kind`` (snake_case) and a message."""

    kind: str
    message: str


# -- the trust anchor and checkpoints --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogKey:
    """The pinned verifier key of one log: its vkey text, name, key and origin line."""

    text: str
    name: str
    public_key: PublicKey
    origin: str

    @classmethod
    def parse(cls, text: str, origin: str | None = None) -> LogKey:
        """Parse a C2SP vkey ``<name>+<key id>+<key>``; the origin defaults to the key's
        name (the exchange signs its checkpoints with origin = key name). Raises
        ``LicentiaError(MALFORMED)``."""
        text = text.strip()
        name, _, public_key = parse_vkey(text)
        return cls(text, name, public_key, name if origin is None else origin)

    def open(self, note: str) -> Checkpoint:
        """The checkpoint in ``note`` if it is signed by this key for this origin; raises
        ``LicentiaError`` (``BAD_SIGNATURE``, ``MALFORMED``, ``TOO_LARGE``) otherwise."""
        return open_checkpoint(note, self.name, self.public_key, self.origin)


@dataclass(frozen=True, slots=True)
class ServedCheckpoint:
    """A checkpoint as the exchange served it, not yet verified.

    ``advertised_key`` is the exchange's own claim of its verifier key: a hint for a person
    who has none, never a trust anchor (truncated to :data:`MAX_ADVERTISED_KEY_CHARS`).
    """

    note: str
    advertised_key: str


@dataclass(frozen=True, slots=True)
class LoggedEntry:
    """One entry as served: its index, its exact bytes, when it was appended (unix s)."""

    index: int
    data: bytes
    appended_at: int


class LogClient:
    """The public (unsigned) TransparencyService calls, with their answers bounded.

    ``rpc`` should be a :class:`~licentia.clients.channel.SignedChannel` without a key.
    ``timeout`` bounds each call (each page of entries, too).
    """

    def __init__(self, rpc: SignedChannel, timeout: float = 30.0) -> None:
        self.rpc = rpc
        self.timeout = timeout

    def checkpoint(self) -> ServedCheckpoint:
        """The latest checkpoint note and the key the exchange advertises (both unverified)."""
        resp = self.rpc.unary(
            GET_CHECKPOINT,
            transparency_pb2.GetCheckpointRequest(),
            transparency_pb2.GetCheckpointResponse,
            self.timeout,
        )
        return ServedCheckpoint(resp.checkpoint, resp.verifier_key[:MAX_ADVERTISED_KEY_CHARS])

    def entries(self, start: int, end: int, page: int = PAGE_SIZE) -> Iterator[LoggedEntry]:
        """Entries ``[start, end)`` in order, fetched ``page`` at a time.

        Raises :class:`LogServeError` when the exchange sends an unexpected index, more
        than was asked for, or nothing while entries are still due; ``ExchangeError`` when
        a call fails.
        """
        if not 0 <= start <= end <= merkle.MAX_TREE_SIZE or not 0 < page <= PAGE_SIZE:
            raise ValueError("bad entry range or page size")
        nxt = start
        while nxt < end:
            stop = min(end, nxt + page)
            got = 0
            stream = self.rpc.server_stream(
                GET_ENTRIES,
                transparency_pb2.GetEntriesRequest(start=nxt, end=stop),
                transparency_pb2.GetEntriesResponse,
                self.timeout,
            )
            for r in stream:
                if nxt >= stop:
                    raise LogServeError(f"asked for entries up to {stop}, the exchange sent more")
                if r.index != nxt:
                    raise LogServeError(f"asked for entry {nxt}, the exchange sent entry {r.index}")
                yield LoggedEntry(nxt, r.entry, r.appended_at)
                nxt += 1
                got += 1
            if not got:
                raise LogServeError(
                    f"the exchange serves no entry {nxt} although its signed checkpoint"
                    f" counts {end}"
                )

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The exchange's proof that its tree of ``old_size`` is a prefix of ``new_size``."""
        resp = self.rpc.unary(
            GET_CONSISTENCY_PROOF,
            transparency_pb2.GetConsistencyProofRequest(old_size=old_size, new_size=new_size),
            transparency_pb2.GetConsistencyProofResponse,
            self.timeout,
        )
        if len(resp.proof) > merkle.MAX_PROOF_LENGTH:
            return []  # too long to be valid: an empty proof fails verification
        return list(resp.proof)

    def inclusion_proof(
        self, licence_id: bytes, tree_size: int, *, index: int | None = None
    ) -> transparency_pb2.GetInclusionProofResponse:
        """The exchange's proof that a licence's issuance entry (or, with ``index``, the
        entry at that index: ``licence_id`` is then ignored) is in its tree of
        ``tree_size`` (the entry, its index and the audit path; unverified)."""
        request = (
            transparency_pb2.GetInclusionProofRequest(licence_id=licence_id, tree_size=tree_size)
            if index is None
            else transparency_pb2.GetInclusionProofRequest(index=index, tree_size=tree_size)
        )
        resp: transparency_pb2.GetInclusionProofResponse = self.rpc.unary(
            GET_INCLUSION_PROOF,
            request,
            transparency_pb2.GetInclusionProofResponse,
            self.timeout,
        )
        if len(resp.proof) > merkle.MAX_PROOF_LENGTH or len(resp.entry) > MAX_ENTRY_BYTES:
            resp.ClearField("proof")  # too long to be valid: an empty proof fails verification
        return resp


def prove_consistency(
    client: LogClient, old_size: int, old_root: bytes, new: Checkpoint
) -> tuple[bool, str]:
    """Whether the tree ``new`` extends the tree ``(old_size, old_root)`` trusted before,
    checked with a consistency proof from the exchange; ``(ok, why not)``.

    A smaller tree, the same size with another root, a proof that does not verify, or a
    refusal to give one all mean the exchange's history was rewritten (or forked).
    Raises :class:`~licentia.clients.channel.ExchangeUnavailable` when the exchange
    cannot be reached.
    """
    if new.size < old_size:
        return False, f"the log shrank from {old_size} to {new.size} entries"
    if old_size in (new.size, 0):
        ok = merkle.verify_consistency(old_size, new.size, old_root, new.root, [])
        return ok, "" if ok else f"another root for the same {old_size} entries"
    try:
        proof = client.consistency_proof(old_size, new.size)
    except ExchangeUnavailable:
        raise
    except ExchangeError as e:
        return False, f"the exchange would not prove it ({e.message})"
    if merkle.verify_consistency(old_size, new.size, old_root, new.root, proof):
        return True, ""
    return False, f"the consistency proof from {old_size} to {new.size} entries does not verify"


# -- recomputing the tree ------------------------------------------------------------------


def frontier_keys(size: int) -> list[merkle.NodeKey]:
    """The complete aligned subtrees ``(level, index)`` that cover leaves ``[0, size)``,
    left to right: all a tree of ``size`` leaves needs to compute its root or grow."""
    out: list[merkle.NodeKey] = []
    begin = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, begin >> level))
            begin += 1 << level
    return out


class Frontier:
    """The right edge of a Merkle tree being recomputed from its entries.

    Holds only the :func:`frontier_keys` nodes of the current size (at most 63 hashes), a
    :class:`licentia.merkle.Nodes` for :func:`licentia.merkle.completed_nodes` and
    :func:`licentia.merkle.root`. Persist :attr:`size` and :meth:`nodes`; rebuild with
    :meth:`restore`, which checks that they fit together.
    """

    __slots__ = ("_nodes", "size")

    def __init__(self) -> None:
        self.size = 0
        self._nodes: dict[merkle.NodeKey, bytes] = {}

    @classmethod
    def restore(cls, size: int, nodes: Mapping[merkle.NodeKey, bytes]) -> Frontier:
        """The frontier of a tree of ``size`` from its stored nodes; raises ``ValueError``
        unless they are exactly that size's frontier, each a 32-byte hash."""
        if not 0 <= size <= merkle.MAX_TREE_SIZE:
            raise ValueError("tree size out of range")
        if set(nodes) != set(frontier_keys(size)):
            raise ValueError("the stored nodes are not the frontier of that size")
        if any(len(h) != merkle.HASH_BYTES for h in nodes.values()):
            raise ValueError("a stored node is not a 32-byte hash")
        out = cls()
        out.size = size
        out._nodes = dict(nodes)
        return out

    def get(self, level: int, index: int) -> bytes:
        """A frontier node (``KeyError`` for any other)."""
        return self._nodes[(level, index)]

    def get_many(self, keys_: Sequence[merkle.NodeKey]) -> Mapping[merkle.NodeKey, bytes]:
        """Several frontier nodes."""
        return {k: self._nodes[k] for k in keys_}

    def append(self, entry: bytes) -> None:
        """Add the next entry (its raw bytes, hashed here) and drop the nodes it buried."""
        for level, index, digest in merkle.completed_nodes(
            self.size, merkle.leaf_hash(entry), self
        ):
            self._nodes[(level, index)] = digest
        self.size += 1
        keep = frontier_keys(self.size)
        self._nodes = {k: self._nodes[k] for k in keep}

    def root(self) -> bytes:
        """MTH of the entries appended so far."""
        return merkle.root(self.size, self)

    def nodes(self) -> dict[merkle.NodeKey, bytes]:
        """The frontier nodes, to persist."""
        return dict(self._nodes)


def locate_divergence(
    client: LogClient, roots: Sequence[tuple[int, bytes]], signed: Checkpoint
) -> tuple[int, int]:
    """Where recomputed entries stop matching ``signed``: the largest recorded size known
    to be a prefix of the signed tree and the smallest one known not to be.

    ``roots`` are ``(size, recomputed root)`` pairs in increasing size, all below
    ``signed.size``, the first one known good (e.g. the last trusted checkpoint). With one
    pair per entry, the first rewritten entry is the good size itself. It asks the
    exchange for O(log n) consistency proofs (a proof it cannot give counts as bad).
    """
    lo, hi = 0, len(roots)  # roots[lo] good; roots[hi] (or the signed size) bad
    while hi - lo > 1:
        mid = (lo + hi) // 2
        size, root = roots[mid]
        ok, _ = prove_consistency(client, size, root, signed)
        if ok:
            lo = mid
        else:
            hi = mid
    good = roots[lo][0]
    bad = roots[hi][0] if hi < len(roots) else signed.size
    return good, bad


# -- what the entries say --------------------------------------------------------------------


def decode_entry(data: bytes) -> transparency_pb2.LogEntry:
    """Parse one entry: canonical ``LogEntry`` bytes of one kind, at most
    :data:`MAX_ENTRY_BYTES`. Raises ``LicentiaError`` (``TOO_LARGE``, ``MALFORMED``)."""
    if len(data) > MAX_ENTRY_BYTES:
        raise LicentiaError(Reason.TOO_LARGE, f"an entry of {len(data)} bytes")
    entry = parse_canonical(data, transparency_pb2.LogEntry(), "log entry")
    if entry.WhichOneof("kind") is None:
        raise LicentiaError(Reason.MALFORMED, "an entry of no known kind")
    return entry


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An issuer key as the log has described it so far."""

    key_id: bytes
    public_key: bytes
    not_before: int
    #: 0 while the key is current.
    not_after: int
    withdrawn: bool


class LoggedKeys:
    """The exchange's issuer keys, as built from the log's ``issuer_key`` entries in order.

    It is an :class:`~licentia.keys.IssuerKeyResolver` for :func:`check_licence`: at any
    point of the log it resolves exactly the keys published before that point and not
    withdrawn, with the window known then.
    """

    #: At most this many keys are tracked (each rotation adds one).
    MAX_KEYS = 100_000

    def __init__(self, records: Sequence[KeyRecord] = ()) -> None:
        self._by_id: dict[bytes, KeyRecord] = {r.key_id: r for r in records}

    def records(self) -> list[KeyRecord]:
        """Every key seen, to persist."""
        return list(self._by_id.values())

    def get(self, key_id: bytes) -> KeyRecord | None:
        """What the log has said about this key, if anything."""
        return self._by_id.get(key_id)

    def resolve(self, key_id: bytes) -> IssuerKey | None:
        """The key, if published and not withdrawn (:class:`IssuerKeyResolver`)."""
        r = self._by_id.get(key_id)
        if r is None or r.withdrawn:
            return None
        return IssuerKey(PublicKey(r.public_key), r.not_before, r.not_after or None)

    def apply(self, event: transparency_pb2.LoggedIssuerKey) -> tuple[list[Finding], KeyRecord]:
        """Record one key event; the problems with it and the key's record after it.

        A key event is checked for: a key id that matches the key (an event whose id does
        not is not recorded), a non-empty window, and no change to what is fixed (the key,
        its start), no window changed once closed, no withdrawn key coming back, no
        withdrawal of a key never published. A flagged change is not applied: the record
        keeps the key and start first published, the first closing of its window, and a
        withdrawal for good.
        """
        out: list[Finding] = []
        raw, key_id = event.public_key, event.key_id
        record = KeyRecord(key_id, raw, event.not_before, event.not_after, event.withdrawn)
        if len(raw) != keys.PUBLIC_KEY_BYTES or keys.key_id_of(raw) != key_id:
            # Not recorded: it would let the key sign under another key's id.
            return [
                Finding("issuer_key_event", "a key event whose key id is not its key's")
            ], record
        if event.not_after and event.not_after <= event.not_before:
            out.append(Finding("issuer_key_event", "a key event with an empty window"))
        old = self._by_id.get(key_id)
        if old is None:
            if event.withdrawn:
                out.append(Finding("issuer_key_event", "a withdrawal of a key never published"))
            if len(self._by_id) >= self.MAX_KEYS:
                out.append(Finding("issuer_key_event", "too many issuer keys to track"))
                return out, record
        else:
            if old.public_key != raw or old.not_before != event.not_before:
                out.append(Finding("issuer_key_event", "a published key changed its key or start"))
            if old.withdrawn and not event.withdrawn:
                out.append(Finding("issuer_key_event", "a withdrawn key was published again"))
            if old.not_after and event.not_after != old.not_after:
                out.append(Finding("issuer_key_event", "a closed key window was changed"))
            # What is fixed stays as first published; a window closes once; a withdrawal
            # is final.
            record = replace(
                old,
                not_after=old.not_after or event.not_after,
                withdrawn=old.withdrawn or event.withdrawn,
            )
        self._by_id[key_id] = record
        return out, record


@dataclass(frozen=True, slots=True)
class LicenceFacts:
    """What later entries need to know about a logged licence."""

    licence_id: bytes
    holder: bytes
    issuer_key_id: bytes
    issued_at: int
    not_before: int
    not_after: int
    #: The digest of each licensed asset as the token names it (v1: its SHA-256; v2: salted
    #: with :attr:`asset_salt`).
    assets: frozenset[bytes]
    #: The licensee key the claims name (b"" when unknown: a state kept before it was).
    licensee: bytes = b""
    #: v2: the salt of the asset digests (b"" in v1).
    asset_salt: bytes = b""

    def names_asset(self, sha256: bytes) -> bool:
        """Whether the licence names the asset whose bytes have SHA-256 ``sha256``."""
        if not self.asset_salt:
            return sha256 in self.assets
        return len(sha256) == 32 and salted_digest(self.asset_salt, sha256) in self.assets

    @classmethod
    def of(cls, u: UnverifiedLicence) -> LicenceFacts:
        """The facts of a parsed licence."""
        return cls(
            u.licence_id,
            u.holder_key,
            u.issuer_key_id,
            u.issued_at,
            u.not_before,
            u.not_after,
            frozenset(u.asset_categories),
            u.licensee_key,
            u.asset_salt,
        )


_LICENCE_REASONS: dict[Reason, tuple[str, str]] = {
    Reason.UNKNOWN_ISSUER_KEY: (
        "licence_issuer_key",
        "signed with an issuer key the log had not published, or had withdrawn, before it",
    ),
    Reason.ISSUER_KEY_NOT_VALID: (
        "licence_issuer_key",
        "issued outside its issuer key's validity window",
    ),
    Reason.BAD_SIGNATURE: ("licence_signature", "the exchange's signature does not verify"),
    Reason.BAD_CONSENT: (
        "licence_consent",
        "forged consent: signed by the exchange but not approved by its holder (the"
        " holder's signature does not verify)",
    ),
    Reason.OUTSIDE_STANDING_RULE: (
        "licence_consent",
        "issued under a standing rule that does not cover it",
    ),
    Reason.NOT_LOGGED: (
        "licence_not_logged",
        "a v2 licence without the log's promise, or promised before it was issued",
    ),
    Reason.SENSITIVE_USE_NEEDS_APPROVAL: (
        "standing_rule_sensitive",
        "a sensitive use (political campaign, AI training, opinions) issued under a"
        " standing rule instead of an explicit approval",
    ),
}


def check_licence(
    token: str, issuer_keys: LoggedKeys, max_term_seconds: int = DEFAULT_MAX_TERM_SECONDS
) -> tuple[LicenceFacts | None, list[Finding]]:
    """Check a logged licence token: its facts (``None`` if it does not parse) and every
    problem with it.

    Checked with the protocol core (:func:`licentia.token.authenticate`): the issuer key
    (published before this entry, not withdrawn, its window holding ``issued_at``), the
    exchange's signature, the holder's consent (an approval over the exact claims, or a
    standing rule signed by the holder that covers them and was in force at issue), and
    the exchange's promises: a term of at most ``max_term_seconds``, never perpetual, no
    sensitive use under a standing rule.
    """
    try:
        u = parse_token(token)
    except LicentiaError as e:
        if _is_perpetual(token):
            return None, [Finding("licence_perpetual", "a perpetual licence (no end date)")]
        return None, [Finding("licence_unreadable", f"the token does not parse ({e})")]
    out: list[Finding] = []
    _, reasons = authenticate(u, issuer_keys, max_term_seconds)
    for reason in dict.fromkeys(reasons):
        if reason == Reason.INVALID_TERM:
            term = u.not_after - u.not_before
            if term <= 0:
                out.append(Finding("licence_term", "an empty validity window"))
            else:
                out.append(
                    Finding(
                        "licence_term",
                        f"a term of {_days(term)} days, over the maximum of"
                        f" {_days(max_term_seconds)} days",
                    )
                )
            continue
        kind, message = _LICENCE_REASONS.get(reason, ("licence_invalid", reason.name))
        if reason == Reason.UNKNOWN_ISSUER_KEY:
            known = issuer_keys.get(u.issuer_key_id)
            if known is None:
                message = "signed with an issuer key the log had not published before it"
            elif known.withdrawn:
                message = "signed with an issuer key already withdrawn when it was logged"
        out.append(Finding(kind, f"{message} ({reason.name})"))
    consent = u.consent
    if isinstance(consent, StandingConsent) and not reasons:
        try:
            rule = StandingRule.decode(consent.rule_bytes)
        except LicentiaError:  # authenticate would have said BAD_CONSENT
            rule = None
        if rule is not None and not rule.not_before <= u.issued_at < rule.not_after:
            out.append(
                Finding("licence_consent", "issued under a standing rule that was not in force")
            )
    return LicenceFacts.of(u), out


def _days(seconds: int) -> str:
    return f"{seconds / 86400:g}"


def _is_perpetual(token: str) -> bool:
    """Whether a token that does not parse is only wrong in having no end date."""
    if len(token) > MAX_TOKEN_CHARS or not token.startswith(TOKEN_PREFIXES):
        return False
    try:
        env = licence_pb2.SignedLicence.FromString(b64url_decode(token.partition(".")[2]))
        claims = licence_pb2.LicenceClaims.FromString(env.claims)
    except (LicentiaError, DecodeError, RecursionError, ValueError):
        return False
    return claims.not_after == 0 and len(claims.licence_id) == LICENCE_ID_BYTES


def check_revocation(
    rev: transparency_pb2.LoggedRevocation,
    licence: LicenceFacts | None,
    same_account: SameAccount = _same_key,
) -> list[Finding]:
    """Every problem with a logged revocation of ``licence`` (``None``: not in the log).

    The signed call must be there and verify (Ed25519 under ``licentia.v1.request`` over
    method, body hash, timestamp and nonce). For cause REVOKED or ERASED its key must be a
    key of the holder's account (``same_account`` with the key the licence names: any of
    her devices may revoke) and it must be a ``RevokeLicence`` naming this licence (REVOKED)
    or an ``EraseAssets`` erasing one of its assets, or all of them (ERASED). For cause
    LICENSEE_KEY_COMPROMISED it must be a ``ChangeKeySet`` signed by a key of the licensee's
    account whose change removes the licence's licensee key as compromised. The revocation
    time must be close to the call's and not before the licence was issued.
    """
    if licence is None:
        return [Finding("revocation_unknown_licence", "a revocation of a licence not in the log")]
    call = rev.request
    if not rev.HasField("request") or not call.key:
        return [Finding("revocation_signature", "a revocation without the holder's signed call")]
    out: list[Finding] = []
    if not _call_verifies(call):
        out.append(
            Finding("revocation_signature", "the signature of the logged call does not verify")
        )
    by_licensee = rev.cause == licences_pb2.TERMINATION_CAUSE_LICENSEE_KEY_COMPROMISED
    owner = licence.licensee if by_licensee else licence.holder
    if not owner or not same_account(call.key, owner):
        who = "the licensee's account" if by_licensee else "the holder"
        out.append(
            Finding("revocation_signer", f"the logged call was signed by someone other than {who}")
        )
    out.extend(_check_call_names_licence(rev, licence))
    if abs(rev.revoked_at - call.timestamp) > REVOCATION_CLOCK_SLACK:
        out.append(
            Finding(
                "revocation_time",
                f"revoked at {rev.revoked_at}, but the holder's call is timestamped"
                f" {call.timestamp}",
            )
        )
    if rev.revoked_at < licence.issued_at:
        out.append(Finding("revocation_time", "revoked before the licence was issued"))
    return out


def _call_verifies(call: transparency_pb2.SignedCall) -> bool:
    """Whether a logged signed call verifies as token-format §6 says (its method bounded)."""
    payload = request_payload(call.method, call.body, call.timestamp, call.nonce)
    return len(call.method) <= MAX_METHOD_CHARS and keys.verify_signature(
        call.key, keys.REQUEST, payload, call.signature
    )


def check_account_erasure(erasure: transparency_pb2.LoggedAccountErasure) -> list[Finding]:
    """Every problem with a logged account erasure: the holder's signed ``DeleteAccount``
    call must be there and verify (as a revocation's, token-format §6), and the erasure's
    time must be close to the call's."""
    call = erasure.request
    if not erasure.HasField("request") or not call.key:
        return [Finding("erasure_signature", "an account erasure without the holder's call")]
    out: list[Finding] = []
    if not _call_verifies(call):
        out.append(Finding("erasure_signature", "the signature of the logged call does not verify"))
    if call.method != DELETE_ACCOUNT_METHOD:
        out.append(Finding("erasure_call", f"an account erasure, but the call is {call.method!r}"))
    if abs(erasure.erased_at - call.timestamp) > REVOCATION_CLOCK_SLACK:
        out.append(
            Finding(
                "erasure_time",
                f"erased at {erasure.erased_at}, but the holder's call is timestamped"
                f" {call.timestamp}",
            )
        )
    return out


def _check_call_names_licence(
    rev: transparency_pb2.LoggedRevocation, licence: LicenceFacts
) -> list[Finding]:
    call = rev.request
    if rev.cause == licences_pb2.TERMINATION_CAUSE_REVOKED:
        if call.method != REVOKE_METHOD:
            return [Finding("revocation_call", f"cause REVOKED, but the call is {call.method!r}")]
        try:
            named = licences_pb2.RevokeLicenceRequest.FromString(call.body).licence_id
        except DecodeError:
            return [Finding("revocation_call", "the logged RevokeLicence body does not parse")]
        if named != licence.licence_id:
            return [Finding("revocation_call", "the holder's call revokes another licence")]
        return []
    if rev.cause == licences_pb2.TERMINATION_CAUSE_ERASED:
        if call.method == DELETE_ACCOUNT_METHOD:
            return []  # the holder deleted her account: every licence of hers ends
        if call.method != ERASE_METHOD:
            return [Finding("revocation_call", f"cause ERASED, but the call is {call.method!r}")]
        try:
            erased = registry_pb2.EraseAssetsRequest.FromString(call.body).sha256
        except DecodeError:
            return [Finding("revocation_call", "the logged EraseAssets body does not parse")]
        if len(erased) > MAX_ERASED_DIGESTS:
            return [Finding("revocation_call", "the logged EraseAssets call names too many")]
        if erased and not any(licence.names_asset(d) for d in erased):
            return [Finding("revocation_call", "the holder erased none of this licence's assets")]
        return []
    if rev.cause == licences_pb2.TERMINATION_CAUSE_LICENSEE_KEY_COMPROMISED:
        return _check_removal_names_licensee(call, licence)
    return [Finding("revocation_call", f"an unknown termination cause {int(rev.cause)}")]


def _check_removal_names_licensee(
    call: transparency_pb2.SignedCall, licence: LicenceFacts
) -> list[Finding]:
    """A revocation for a compromised licensee key: the call must be a key-set change that
    removes the licence's licensee key as compromised."""
    if call.method != CHANGE_KEY_SET_METHOD:
        return [
            Finding(
                "revocation_call",
                f"cause LICENSEE_KEY_COMPROMISED, but the call is {call.method!r}",
            )
        ]
    try:
        signed = accounts_pb2.ChangeKeySetRequest.FromString(call.body).change
        change = accounts_pb2.KeySetChange.FromString(signed.change)
    except (DecodeError, RecursionError):
        return [Finding("revocation_call", "the logged ChangeKeySet body does not parse")]
    if change.cause != accounts_pb2.KEY_REMOVAL_CAUSE_COMPROMISED or any(
        k.public_key == licence.licensee for k in change.keys
    ):
        return [
            Finding(
                "revocation_call",
                "the logged key-set change does not remove the licence's licensee key as"
                " compromised",
            )
        ]
    return []


# -- sealed entries ----------------------------------------------------------------------------

#: The sealed box of the smallest entry: one padded block and the MAC.
_MIN_BOX_BYTES = sealed.PAD_BYTES + 16


def check_sealed_form(entry: transparency_pb2.SealedEntry) -> list[Finding]:
    """Every problem with the form of a sealed entry: what anyone can check of an entry that
    names nobody (docs/token-format.md §10c). Its tag is 16 bytes, its commitment 32, and
    its box one or more 256-byte blocks and the 16-byte MAC, at most
    :data:`licentia.sealed.MAX_BOX_BYTES`. (That its encoding is canonical is checked by
    :func:`decode_entry`.) Its contents are for its account's audit alone."""
    box = len(entry.box)
    if len(entry.tag) != sealed.TAG_BYTES:
        return [Finding("sealed_form", f"a sealed entry's tag of {len(entry.tag)} bytes")]
    if len(entry.commitment) != sealed.COMMITMENT_BYTES:
        return [
            Finding("sealed_form", f"a sealed entry's commitment of {len(entry.commitment)} bytes")
        ]
    if box < _MIN_BOX_BYTES or box > sealed.MAX_BOX_BYTES or (box - 16) % sealed.PAD_BYTES:
        return [Finding("sealed_form", f"a sealed box of {box} bytes")]
    return []


@dataclass(frozen=True, slots=True)
class Logged:
    """What :func:`check_logged` found: the problems (none: the token is in the log) and the
    checkpoint it checked against (``None`` when that checkpoint did not verify)."""

    findings: list[Finding]
    checkpoint: Checkpoint | None = None
    #: The index of the token's entry (its promise, or where a v1 token was found).
    index: int | None = None

    @property
    def ok(self) -> bool:
        """The token's entry is in the signed log and commits to exactly this token."""
        return not self.findings


def check_logged(token: str, client: LogClient, log_key: LogKey) -> Logged:
    """Whether the licence ``token`` is in the exchange's log: what a licensee or a platform
    holding the token checks, knowing only the pinned ``log_key``.

    A v2 token names its entry (its log promise, signed by the issuer): the entry at that
    index, proved included in the latest checkpoint signed by ``log_key``, must be a sealed
    entry whose commitment is :func:`licentia.sealed.licence_commitment` of the token. A v2
    token with no promise is ``not_logged`` (a verifier refuses it: NOT_LOGGED). A v1 token
    (from before v2) is looked up by its licence id and must be logged in clear, exactly.
    Nothing else is learnt: the entry shows nobody's name, and the token's holder is not
    asked. Raises ``ExchangeUnavailable`` when the exchange cannot be reached.
    """
    try:
        u = parse_token(token)
    except LicentiaError as e:
        return Logged([Finding("licence_unreadable", f"the token does not parse ({e})")])
    if u.version == 2 and u.promise is None:
        return Logged([Finding("not_logged", "the token carries no log promise (NOT_LOGGED)")])
    try:
        cp = log_key.open(client.checkpoint().note)
    except LicentiaError as e:
        return Logged([Finding("checkpoint_signature", f"the checkpoint does not verify ({e})")])
    index = u.promise.index if u.promise is not None else None
    if index is not None and index >= cp.size:
        return Logged(
            [
                Finding(
                    "not_logged",
                    f"the token promises entry {index}, but the signed log has {cp.size} entries",
                )
            ],
            cp,
            index,
        )
    try:
        proof = client.inclusion_proof(u.licence_id, cp.size, index=index)
    except ExchangeUnavailable:
        raise
    except ExchangeError as e:
        return Logged([Finding("not_logged", f"no inclusion proof ({e.message})")], cp, index)
    at = proof.index if index is None else index
    if not merkle.verify_inclusion(proof.entry, at, cp.size, list(proof.proof), cp.root):
        return Logged(
            [Finding("inclusion_proof", f"the inclusion proof of entry {at} does not verify")],
            cp,
            at,
        )
    try:
        entry = decode_entry(proof.entry)
    except LicentiaError as e:
        return Logged([Finding("entry_unreadable", f"entry {at} is unreadable ({e})")], cp, at)
    if u.version == 1:
        same = entry.WhichOneof("kind") == "licence" and entry.licence == token
    else:
        same = entry.WhichOneof("kind") == "sealed" and entry.sealed.commitment == (
            sealed.licence_commitment(token)
        )
    if not same:
        return Logged(
            [Finding("not_logged", f"entry {at} of the log is not this token's: another entry")],
            cp,
            at,
        )
    return Logged([], cp, at)
