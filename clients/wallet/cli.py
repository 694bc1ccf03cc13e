"""licentia-wallet: your key, your data, your licences — from the command line.

Every licence to use your name, photo, voice or story needs your consent, given with a key
that only you hold. This tool keeps that key in an encrypted file (``init``), tells the
exchange what you offer (``register``, ``assets``, ``terms``), shows you what advertisers ask
for in plain words (``inbox``), and lets you approve, decline, and revoke at any moment.

Exit status: 0 on success, 1 when an operation fails, 2 when the command is misused.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import hashlib
import json
import os
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from licentia import keys, merkle
from licentia.errors import LicentiaError
from licentia.keys import PrivateKey
from licentia.token import (
    LicenceClaims,
    StandingRule,
    parse_token,
)
from licentia.v1 import (
    ledger_pb2,
    records_pb2,
)
from licentia.vocabulary import DataCategory, Medium, Purpose

from .. import logcheck
from ..auditor.state import AuditState, StateError, Totals
from ..channel import ExchangeError
from ..holder import Holder, new_idempotency_key, standing_rule
from . import keystore

PROG = "licentia-wallet"
DEFAULT_WALLET = Path.home() / ".licentia" / "wallet.json"
DEFAULT_SERVER = "127.0.0.1:7700"
E = TypeVar("E", DataCategory, Purpose, Medium)


class OperationFailedError(Exception):
    """An operation that failed: printed as ``licentia-wallet: error: …``, exit 1."""


def _name(member: DataCategory | Purpose | Medium) -> str:
    return member.name.lower().replace("_", "-")


def _enum(kind: type[E], text: str) -> E:
    try:
        return kind[text.strip().upper().replace("-", "_")]
    except KeyError:
        choices = ", ".join(_name(m) for m in kind)
        raise argparse.ArgumentTypeError(f"unknown {text!r} (choose from {choices})") from None


def _enums(kind: type[E]) -> Callable[[str], list[E]]:
    def parse(text: str) -> list[E]:
        return [_enum(kind, t) for t in text.split(",") if t.strip()]

    return parse


def _words(values: Sequence[Any]) -> str:
    return ", ".join(_name(v) if hasattr(v, "name") else str(v) for v in values)


def _when(t: int) -> str:
    try:
        return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):  # beyond the calendar: say it as it is
        return f"{t} (Unix seconds)"


def _shown(text: str) -> str:
    """``text`` safe to put before a person's eyes on a terminal: every control or format
    character (escape sequences, bidirectional overrides, …) but the line breaks is shown
    as its code, so nothing the exchange sends can rewrite or hide what the wallet prints
    (the terms a holder reads before signing, say)."""
    if text.isprintable():
        return text
    return "".join(c if c == "\n" or c.isprintable() else f"\\u{{{ord(c):04x}}}" for c in text)


def _money(minor: int, currency: str) -> str:
    return f"{minor // 100}.{minor % 100:02d} {currency}"


def _minor(text: str) -> int:
    """``"12.50"`` -> 1250 (minor units); refuses more than two decimals."""
    try:
        whole, _, cents = text.strip().partition(".")
        if len(cents) > 2 or not whole.isdigit() or (cents and not cents.isdigit()):
            raise ValueError
        return int(whole) * 100 + int(cents.ljust(2, "0") or 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r} (e.g. 1.50)") from None


# -- the session: wallet, passphrase, channel -----------------------------------------------


class Session:
    """One command's wallet and connection."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.wallet: Path = args.wallet
        self._key: PrivateKey | None = None
        self._holder: Holder | None = None

    def passphrase(self, *, twice: bool = False) -> str:
        """From --passphrase-file (or stdin with '-'), else asked on the terminal."""
        source = self.args.passphrase_file
        if source is not None:
            text = sys.stdin.readline() if source == "-" else _read_first_line(Path(source))
            return text.rstrip("\r\n")
        if not sys.stdin.isatty():
            raise OperationFailedError(
                "no terminal to ask the passphrase: use --passphrase-file PATH or -"
            )
        first = getpass.getpass("Wallet passphrase: ")
        if twice and getpass.getpass("Again, to be sure: ") != first:
            raise OperationFailedError("the two passphrases differ")
        return first

    @property
    def key(self) -> PrivateKey:
        """The holder's key, unlocked once per command."""
        if self._key is None:
            keystore.public_key(self.wallet)  # say what is wrong with the file before asking
            self._key = keystore.open_wallet(self.wallet, self.passphrase())
        return self._key

    @property
    def holder(self) -> Holder:
        """The holder SDK's client of the exchange, signing with the wallet's key."""
        if self._holder is None:
            ca = Path(self.args.tls_ca).read_bytes() if self.args.tls_ca else None
            self._holder = Holder.connect(self.args.server, self.key, tls_ca=ca)
        return self._holder

    def close(self) -> None:
        """Close the channel."""
        if self._holder is not None:
            self._holder.close()


def _read_first_line(path: Path) -> str:
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline()
    except OSError as e:
        raise OperationFailedError(f"cannot read the passphrase file: {e.strerror}") from None


def _out(args: argparse.Namespace, doc: Any, text: str) -> None:
    """One JSON document with --json, else the plain words."""
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))  # JSON escapes control characters
    else:
        print(_shown(text))


def _dict(msg: Message) -> dict[str, Any]:
    """A message as JSON, with ids, keys and digests in hex (as the text output shows them)."""
    out = MessageToDict(msg, preserving_proto_field_name=True)
    _hexify(msg, out)
    return out


def _hexify(msg: Message, out: dict[str, Any]) -> None:
    for field, value in msg.ListFields():
        repeated = field.is_repeated
        if field.type == FieldDescriptor.TYPE_BYTES:
            out[field.name] = [v.hex() for v in value] if repeated else value.hex()
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.name in out:
            if repeated:
                for sub_msg, sub_out in zip(value, out[field.name], strict=True):
                    _hexify(sub_msg, sub_out)
            else:
                _hexify(value, out[field.name])


# -- the commands ---------------------------------------------------------------------------


def cmd_init(s: Session) -> None:
    """Create the wallet."""
    public = keystore.create(s.wallet, s.passphrase(twice=True), force=s.args.force)
    _out(
        s.args,
        {"wallet": str(s.wallet), "public_key": public.text},
        f"Created {s.wallet}\nYour public key: {public.text}\n"
        "Keep your passphrase: without it nobody, not even you, can use this key.",
    )


def cmd_whoami(s: Session) -> None:
    """Print the wallet's public key (no passphrase needed)."""
    public = keystore.public_key(s.wallet)
    _out(s.args, {"public_key": public.text}, public.text)


def cmd_register(s: Session) -> None:
    """Register as a holder."""
    profile = s.holder.register(s.args.handle, s.args.name or "")
    _out(s.args, _dict(profile), f"Registered as {profile.handle}.")


def cmd_assets_add(s: Session) -> None:
    """Declare an asset (its digest; its bytes with --upload)."""
    path = Path(s.args.file)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise OperationFailedError(f"cannot read {path}: {e.strerror}") from None
    digest = hashlib.sha256(data).digest()
    asset = s.holder.declare_asset(
        s.args.category, data, s.args.label or path.name, upload=s.args.upload
    )
    stored = "stored at the exchange" if asset.has_content else "digest only"
    _out(
        s.args,
        _dict(asset),
        f"Declared {_name(s.args.category)} {path.name} ({stored})\n  sha256 {digest.hex()}",
    )


def cmd_assets_list(s: Session) -> None:
    """List your assets."""
    assets = s.holder.assets()
    lines = [
        f"{_name(DataCategory(a.category)):<18} {a.label:<24} {a.sha256.hex()[:16]}…"
        + ("  (stored)" if a.has_content else "")
        for a in assets
    ]
    _out(s.args, [_dict(a) for a in assets], "\n".join(lines) or "No assets yet.")


def _terms_from_args(s: Session) -> dict[str, Any]:
    """The keyword arguments of ``Holder.set_terms`` the flags (or ``--file``) give."""
    a = s.args
    values: dict[str, Any] = {}
    if a.file:
        try:
            values = tomllib.loads(Path(a.file).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise OperationFailedError(f"cannot read {a.file}: {e}") from None

    def pick(flag: Any, key: str, parse: Callable[[Any], Any]) -> Any:
        if flag is not None:
            return flag
        if key in values:
            try:
                return parse(values[key])
            except argparse.ArgumentTypeError as e:
                raise OperationFailedError(f"{a.file}: {key}: {e}") from None
        return None

    def listed(kind: type[E]) -> Callable[[Any], list[E]]:
        return lambda v: [_enum(kind, x) for x in (v if isinstance(v, list) else [v])]

    categories = pick(a.categories, "categories", listed(DataCategory))
    purposes = pick(a.purposes, "purposes", listed(Purpose))
    media = pick(a.media, "media", listed(Medium))
    territories = pick(a.territories, "territories", list)
    price = pick(a.price_per_day, "price_per_day", lambda v: _minor(str(v)))
    if not (categories and purposes and media and territories and price):
        raise OperationFailedError(
            "terms need categories, purposes, media, territories and a price per day"
            " (flags or --file terms.toml)"
        )
    refused = pick(a.refuse, "refuse", listed(Purpose)) or []
    multiplier = pick(a.exclusive_multiplier, "exclusive_multiplier", float)
    return {
        "categories": categories,
        "purposes": purposes,
        "refused": refused,
        "media": media,
        "territories": territories,
        "currency": pick(a.currency, "currency", str) or "EUR",
        "price_per_day": price,
        "max_term_seconds": int(pick(a.max_days, "max_days", int) or 365) * 86400,
        "exclusive_multiplier": multiplier,
    }


def _describe_terms(t: records_pb2.Terms) -> str:
    lines = [
        f"You offer:        {_words([DataCategory(c) for c in t.categories])}",
        f"For purposes:     {_words([Purpose(p) for p in t.allowed_purposes])}",
    ]
    if t.refused_purposes:
        lines.append(f"Never for:        {_words([Purpose(p) for p in t.refused_purposes])}")
    lines += [
        f"In media:         {_words([Medium(m) for m in t.media])}",
        f"Where:            {', '.join(t.territories)}",
        f"Price:            {_money(t.price_per_day_minor, t.currency)} per day",
        f"Longest licence:  {t.max_term_seconds // 86400} days",
        "Exclusivity:      "
        + (
            f"offered, at x{t.exclusivity_multiplier_bps / 10_000:g} the price"
            if t.exclusivity_offered
            else "not offered"
        ),
    ]
    return "\n".join(lines)


def cmd_terms_set(s: Session) -> None:
    """Set what you offer, and at what price."""
    terms = s.holder.set_terms(**_terms_from_args(s))
    _out(s.args, _dict(terms), _describe_terms(terms))


def cmd_terms_show(s: Session) -> None:
    """Show your terms."""
    terms = s.holder.terms()
    if terms is None:
        _out(s.args, None, "No terms yet: set them with 'licentia-wallet terms set'.")
        return
    _out(s.args, _dict(terms), _describe_terms(terms))


def _objection(s: Session, objecting: bool) -> None:
    profile = s.holder.set_objection(objecting)
    text = (
        "You have opted out: no new request will reach you until you opt in again."
        if objecting
        else "You have opted in: advertisers can send you requests again."
    )
    _out(s.args, _dict(profile), text)


def cmd_opt_out(s: Session) -> None:
    """Object: stop every new request at once."""
    _objection(s, True)


def cmd_opt_in(s: Session) -> None:
    """Accept new requests again."""
    _objection(s, False)


def _labels(s: Session) -> dict[bytes, str]:
    return {a.sha256: a.label for a in s.holder.assets()}


def describe_claims(claims: LicenceClaims, who: str, labels: dict[bytes, str]) -> str:
    """A licence's claims in plain words."""
    c, p = claims, claims.price
    data = ", ".join(
        f"{_name(a.category)} ({labels.get(a.sha256, a.sha256.hex()[:12] + '…')})" for a in c.assets
    )
    earned = p.amount_minor - p.amount_minor * p.fee_bps // 10_000
    per_use = p.per_use_minor - p.per_use_minor * p.fee_bps // 10_000
    return "\n".join(
        [
            f"Who:         {who}",
            f"Your data:   {data}",
            f"For:         {_words(sorted(c.scope.purposes))}",
            f"Where:       {', '.join(sorted(c.scope.territories))}",
            f"In:          {_words(sorted(c.scope.media))}",
            f"From:        {_when(c.not_before)}",
            f"Until:       {_when(c.not_after)} ({(c.not_after - c.not_before) // 86400} days)",
            f"Uses:        {c.max_uses or 'unlimited'}",
            "Exclusive:   "
            + ("yes: nobody else may use it the same way meanwhile" if c.exclusive else "no"),
            f"Price:       {_money(p.amount_minor, p.currency)}"
            f" (you receive {_money(earned, p.currency)} after the exchange's"
            f" {p.fee_bps / 100:g}% fee)"
            + (
                f", plus {_money(p.per_use_minor, p.currency)} for each use"
                f" (you receive {_money(per_use, p.currency)})"
                if p.per_use_minor
                else ""
            ),
            "You can revoke it at any moment.",
        ]
    )


def _inbox(s: Session, include_answered: bool) -> list[records_pb2.LicenceRequest]:
    return s.holder.inbox(include_answered)


def _pick(ids: Sequence[bytes], text: str, what: str) -> bytes:
    """The one id that ``text`` (hex, or a prefix of at least 6 hex digits) names."""
    text = text.strip().lower()
    found = [i for i in ids if i.hex() == text] or (
        [i for i in ids if i.hex().startswith(text)] if len(text) >= 6 else []
    )
    if len(found) != 1:
        raise OperationFailedError(f"no single {what} {text!r}: see the list for its id")
    return found[0]


_STATE = {v: k.removeprefix("REQUEST_STATE_").lower() for k, v in records_pb2.RequestState.items()}


def cmd_inbox(s: Session) -> None:
    """Show the requests waiting for your answer, in plain words."""
    requests = _inbox(s, s.args.all)
    labels = _labels(s) if requests else {}
    blocks = []
    for r in requests:
        claims = LicenceClaims.decode(r.claims)
        head = (
            f"Request {r.request_id.hex()} ({_STATE.get(r.state, f'state {r.state}')},"
            f" answer before {_when(r.expires_at)})"
        )
        blocks.append(head + "\n" + describe_claims(claims, r.advertiser_organisation, labels))
    _out(
        s.args,
        [_dict(r) for r in requests],
        "\n\n".join(blocks) or "No request is waiting for you.",
    )


def _confirm(s: Session, question: str) -> None:
    if s.args.yes:
        return
    if not sys.stdin.isatty() or s.args.passphrase_file == "-":  # noqa: S105 - "-" is stdin
        raise OperationFailedError("confirm with --yes (no terminal to ask)")
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise OperationFailedError("nothing done")


def cmd_approve(s: Session) -> None:
    """Approve a request: sign its exact claims after reading them."""
    pending = _inbox(s, False)
    rid = _pick([r.request_id for r in pending], s.args.id, "pending request")
    request = next(r for r in pending if r.request_id == rid)
    claims = LicenceClaims.decode(request.claims)
    if claims.holder != s.key.public:
        raise OperationFailedError("this request is not addressed to this wallet's key")
    if not s.args.json:
        text = describe_claims(claims, request.advertiser_organisation, _labels(s))
        print(_shown(text), file=sys.stderr)
    _confirm(s, "Sign this licence?")
    licence = s.holder.approve(request)
    _out(
        s.args,
        _dict(licence),
        f"Approved. Licence {licence.licence_id.hex()} is issued;"
        f" revoke it any time with 'licentia-wallet revoke {licence.licence_id.hex()[:8]}'.",
    )


def cmd_decline(s: Session) -> None:
    """Decline a request."""
    pending = _inbox(s, False)
    rid = _pick([r.request_id for r in pending], s.args.id, "pending request")
    declined = s.holder.decline(rid, s.args.reason or "")
    _out(s.args, _dict(declined), f"Declined request {rid.hex()}.")


_LSTATE = {v: k.removeprefix("LICENCE_STATE_").lower() for k, v in records_pb2.LicenceState.items()}


def _my_licences(s: Session) -> list[records_pb2.LicenceRecord]:
    return s.holder.licences()


def cmd_licences(s: Session) -> None:
    """List every licence issued in your name."""
    rows = _my_licences(s)
    lines = [
        f"{x.licence_id.hex()}  {_LSTATE[x.state]:<8} until {_when(x.not_after)}"
        f"  uses {x.uses}{'/' + str(x.max_uses) if x.max_uses else ''}"
        for x in rows
    ]
    _out(s.args, [_dict(x) for x in rows], "\n".join(lines) or "No licence yet.")


def _licence(s: Session, text: str) -> records_pb2.LicenceRecord:
    """The holder's licence named by its full id (one call) or a prefix (from the list)."""
    full = text.strip().lower()
    if len(full) == 32 and all(c in "0123456789abcdef" for c in full):
        try:
            x = s.holder.licence(bytes.fromhex(full))
        except ExchangeError as e:
            if e.reason.name != "NOT_FOUND":
                raise
        else:
            if x.holder_key == s.key.public.raw:
                return x
        raise OperationFailedError(f"no licence {full} in your name")
    rows = _my_licences(s)
    lid = _pick([x.licence_id for x in rows], text, "licence")
    return next(x for x in rows if x.licence_id == lid)


def cmd_show(s: Session) -> None:
    """Show one licence in plain words."""
    x = _licence(s, s.args.id)
    claims = parse_token(x.token).claims
    text = (
        f"Licence {x.licence_id.hex()} ({_LSTATE[x.state]}, uses so far: {x.uses})\n"
        + describe_claims(claims, "licensee " + keys.PublicKey(x.licensee_key).text, _labels(s))
    )
    _out(s.args, _dict(x), text)


def cmd_revoke(s: Session) -> None:
    """Revoke a licence now (no reason needed); prints the signed termination receipt."""
    x = _licence(s, s.args.id)
    done = s.holder.revoke(x.licence_id)
    receipt = done.receipt
    _out(
        s.args,
        {"licence": _dict(done.licence), "receipt": _dict(done.signed)},
        f"Revoked licence {x.licence_id.hex()} at {_when(receipt.revoked_at)}.\n"
        f"Receipt: event {receipt.sequence}, signed by exchange key"
        f" {done.signed.issuer_key_id.hex()}:\n  {done.signed.signature.hex()}",
    )


def cmd_accesses(s: Session) -> None:
    """Who fetched which of your assets, and when."""
    accesses = s.holder.accesses()
    labels = _labels(s) if accesses else {}
    lines = [
        f"{_when(a.accessed_at)}  {labels.get(a.sha256, a.sha256.hex()[:12])}"
        f"  by {keys.PublicKey(a.licensee_key).text}  under licence {a.licence_id.hex()[:12]}"
        for a in accesses
    ]
    _out(
        s.args,
        [_dict(a) for a in accesses],
        "\n".join(lines) or "Nobody has fetched your data.",
    )


_KIND = {v: k.removeprefix("POSTING_KIND_").lower() for k, v in ledger_pb2.PostingKind.items()}


def cmd_earnings(s: Session) -> None:
    """What you have earned, what you can withdraw, and every payment, newest first."""
    resp = s.holder.statement(s.args.limit)
    cur = resp.currency
    lines = [
        f"Available to withdraw: {_money(resp.available_minor, cur)}",
        f"Earned so far:         {_money(resp.total_minor, cur)}",
        f"Still to come:         {_money(resp.pending_minor, cur)}"
        " (if your live licences run their term)",
    ]
    for x in resp.lines:
        what = f"licence {x.licence_id.hex()[:12]}" if x.licence_id else x.reference
        fee = f" (exchange fee {_money(x.fee_minor, cur)})" if x.fee_minor else ""
        sign = "+" if x.amount_minor >= 0 else "-"
        lines.append(
            f"  {_when(x.at)}  {_KIND[x.kind]:<10} {sign}{_money(abs(x.amount_minor), cur)}"
            f"  {what}{fee}"
        )
    _out(s.args, _dict(resp), "\n".join(lines))


def cmd_withdraw(s: Session) -> None:
    """Move money you have earned to your bank (your payout reference)."""
    key = s.args.idempotency_key
    if key is not None:
        try:
            idem = bytes.fromhex(key)
        except ValueError:
            idem = b""
        if len(idem) != 16:
            raise OperationFailedError("--idempotency-key is 32 hex digits")
    else:
        idem = new_idempotency_key()
    try:
        resp = s.holder.withdraw(s.args.amount, s.args.to, idem)
    except ExchangeError:
        print(
            f"If you try again, add --idempotency-key {idem.hex()} so that it is paid once.",
            file=sys.stderr,
        )
        raise
    amount = -resp.line.amount_minor
    verb = "Already withdrew" if resp.replayed else "Withdrew"
    _out(
        s.args,
        _dict(resp),
        f"{verb} {amount // 100}.{amount % 100:02d} to {resp.line.reference}."
        f" Available now: {resp.balance_minor // 100}.{resp.balance_minor % 100:02d}.",
    )


def cmd_audit(s: Session) -> None:
    """Check the exchange's public log for everything in your name.

    Keeps, next to the wallet (``<wallet>.audit/``, the auditor's state), the last
    checkpoint it trusted; checks that the new one extends it (nothing rewritten), reads only
    the new entries, recomputes the tree, checks every licence in your name was approved by
    you (or by a standing rule you signed) and every revocation of yours was signed by you,
    then checks that each licence the exchange lists for you is in the log (inclusion proof)
    with its revocation. Exit 1 on a problem.
    """
    try:
        state = AuditState.open(s.wallet.with_name(s.wallet.name + ".audit"))
    except StateError as e:
        raise OperationFailedError(str(e)) from None
    try:
        _audit(s, state)
    finally:
        state.close()


def _audit(s: Session, state: AuditState) -> None:
    mine = s.key.public.raw
    log = s.holder.log()
    served = log.checkpoint()
    given = s.args.log_key
    if given and given.startswith("@"):
        given = _read_first_line(Path(given[1:])).strip()
    pinned = state.log_key()
    notes: list[str] = []
    if given and pinned and given != pinned:
        raise OperationFailedError("this wallet already trusts another log key")
    key_text = given or pinned or served.advertised_key
    if not (given or pinned):
        notes.append(f"Trusting the exchange's log key on first use: {key_text}")
    try:
        log_key = logcheck.LogKey.parse(key_text)
        checkpoint = log_key.open(served.note)
    except LicentiaError as e:
        raise OperationFailedError(f"the log's checkpoint is not signed by its key: {e}") from None
    trusted = state.trusted()
    ok, why = logcheck.prove_consistency(
        log,
        trusted.size if trusted else 0,
        trusted.root if trusted else merkle.EMPTY_ROOT,
        checkpoint,
    )
    if not ok:
        _audit_report(s, [f"the log was rewritten since you last checked it: {why}"], notes)
    problems: list[str] = []
    frontier, issuer_keys, totals = state.frontier(), state.issuer_keys(), state.totals()
    checked = licensed = revoked = 0
    for got in log.entries(frontier.size, checkpoint.size):
        frontier.append(got.data)
        checked += 1
        entry = logcheck.decode_entry(got.data)
        kind = entry.WhichOneof("kind")
        if kind == "issuer_key":
            issuer_keys.apply(entry.issuer_key)
        elif kind == "licence" and _holder_of(entry.licence) == mine:
            facts, found = logcheck.check_licence(entry.licence, issuer_keys)
            if facts is not None:
                state.add_licence(facts, got.index)
                licensed += 1
            problems.extend(
                f"licence at entry {got.index}: {f.message} (you never approved it)"
                if f.kind == "licence_consent"
                else f"licence at entry {got.index}: {f.message}"
                for f in found
            )
        elif kind == "revocation":
            seen = state.licence(entry.revocation.licence_id)
            if seen is not None:  # only the holder's own licences are remembered
                for f in logcheck.check_revocation(entry.revocation, seen[0]):
                    problems.append(f"revocation at entry {got.index}: {f.message}")
                state.mark_revoked(entry.revocation.licence_id, got.index)
                revoked += 1
    if frontier.root() != checkpoint.root:
        problems.append("the entries do not hash to the signed root: the log was rewritten")
    for x in _my_licences(s):
        lid = x.licence_id.hex()
        seen = state.licence(x.licence_id)
        if seen is None:
            problems.append(f"licence {lid} is not in the public log")
            continue
        try:
            proof = log.inclusion_proof(x.licence_id, checkpoint.size)
        except ExchangeError as e:
            problems.append(f"no inclusion proof for licence {lid}: {e}")
            continue
        included = merkle.verify_inclusion(
            proof.entry, proof.index, checkpoint.size, list(proof.proof), checkpoint.root
        )
        if not included or logcheck.decode_entry(proof.entry).licence != x.token:
            problems.append(f"the inclusion proof of licence {lid} does not verify")
        if x.revoked_at and seen[2] is None:
            problems.append(f"the revocation of licence {lid} is missing from the log")
    totals = _totals(totals, checked, licensed, revoked)
    if problems:
        state.rollback()
    else:
        state.save_issuer_keys(issuer_keys.records())
        state.save_progress(
            log_key.text, checkpoint.size, checkpoint.root, served.note, frontier, totals
        )
        state.commit()
    _audit_report(
        s,
        problems,
        notes,
        {
            "log_size": checkpoint.size,
            "entries_checked": checked,
            "your_licences": totals.licences,
            "your_revocations": totals.revocations,
        },
    )


def _totals(before: Totals, entries: int, licences: int, revocations: int) -> Totals:
    """The running totals of a wallet's audits (licences and revocations: the holder's)."""
    return Totals(
        before.entries + entries,
        before.licences + licences,
        before.revocations + revocations,
        before.key_events,
    )


def _audit_report(
    s: Session, problems: list[str], notes: list[str], figures: dict[str, int] | None = None
) -> None:
    """Print the audit's report; raise (exit 1) when it found a problem."""
    figures = figures or {}
    lines = list(notes)
    if "log_size" in figures:
        lines.append(
            f"The public log has {figures['log_size']} entries;"
            f" {figures['entries_checked']} new ones checked."
        )
    if problems:
        lines.append(f"{len(problems)} problem(s) found:")
        lines.extend(f"  - {p}" for p in problems)
    else:
        lines.append(
            f"In your name: {figures['your_licences']} licence(s),"
            f" {figures['your_revocations']} revoked; each approved by you and in the log."
        )
    _out(s.args, {**figures, "problems": problems}, "\n".join(lines))
    if problems:
        raise OperationFailedError(f"{len(problems)} problem(s) in the public log")


def _holder_of(token: str) -> bytes:
    try:
        return parse_token(token).holder_key
    except LicentiaError:
        return b""


def cmd_export(s: Session) -> None:
    """Everything the exchange holds about you, as JSON (the right of access)."""
    resp = s.holder.export()
    text = json.dumps(_dict(resp), indent=2, sort_keys=True)
    if s.args.output:
        Path(s.args.output).write_text(text + "\n", encoding="utf-8")
        if not s.args.json:
            print(_shown(f"Wrote everything the exchange holds about you to {s.args.output}."))
            return
    print(text)


def cmd_erase(s: Session) -> None:
    """Erase assets (all by default) and revoke every live licence on them."""
    digests = [bytes.fromhex(h) for h in s.args.sha256]
    what = f"{len(digests)} asset(s)" if digests else "ALL your assets"
    _confirm(s, f"Erase {what} and revoke every live licence on them?")
    resp = s.holder.erase(digests)
    _out(
        s.args,
        _dict(resp),
        f"Erased {resp.erased} asset(s); revoked {len(resp.revoked_licence_ids)} licence(s).",
    )


def cmd_rules_add(s: Session) -> None:
    """Sign a standing rule: requests entirely within it are approved without asking you."""
    a = s.args
    now = int(time.time())
    assets = s.holder.assets()
    categories = set(a.categories)
    digests = [bytes.fromhex(h) for h in a.sha256] or [
        x.sha256 for x in assets if DataCategory(x.category) in categories
    ]
    if not digests:
        raise OperationFailedError("no asset of those categories to cover: add one first")
    try:
        signed = standing_rule(
            s.key,
            categories=categories,
            purposes=a.purposes,
            media=a.media,
            territories=a.territories,
            assets=digests,
            not_before=now,
            not_after=now + a.days * 86400,
            max_term_seconds=a.max_term_days * 86400,
            min_price_per_day=a.min_price_per_day,
            currency=a.currency,
            allow_exclusive=a.allow_exclusive,
            max_uses=a.max_uses,
            licensees=[keys.PublicKey.from_text(k) for k in a.licensee],
        )
    except LicentiaError as e:
        if e.reason.name == "SENSITIVE_USE_NEEDS_APPROVAL":
            raise OperationFailedError(
                "political campaigns, AI model training and opinions are never approved"
                " automatically: you will always be asked"
            ) from None
        raise OperationFailedError(f"not a valid rule: {e}") from None
    record = s.holder.add_standing_rule(signed)
    rule = signed.rule
    _out(
        s.args,
        _dict(record),
        f"Signed standing rule {rule.rule_id.hex()}: requests within it, for"
        f" {len(digests)} asset(s), are approved for you until {_when(rule.not_after)}.\n"
        f"Withdraw it any time with 'licentia-wallet rules withdraw {rule.rule_id.hex()[:8]}'.",
    )


def _rules(s: Session) -> list[records_pb2.StandingRuleRecord]:
    return s.holder.standing_rules()


def cmd_rules_list(s: Session) -> None:
    """Your standing rules, in force and withdrawn."""
    rows = _rules(s)
    lines = []
    for r in rows:
        rule = StandingRule.decode(r.consent.rule)
        state = f"withdrawn {_when(r.withdrawn_at)}" if r.withdrawn_at else "in force"
        lines.append(
            f"{rule.rule_id.hex()}  {state}, until {_when(rule.not_after)}: "
            f"{_words(sorted(rule.scope.categories))} for {_words(sorted(rule.scope.purposes))}"
            f" in {', '.join(sorted(rule.scope.territories))}, at least"
            f" {_money(rule.min_price_per_day_minor, rule.currency)} a day,"
            f" {rule.max_term_seconds // 86400} days at most"
        )
    _out(s.args, [_dict(r) for r in rows], "\n".join(lines) or "No standing rule.")


def cmd_rules_withdraw(s: Session) -> None:
    """Withdraw a standing rule: new requests are asked again."""
    rows = _rules(s)
    ids = [StandingRule.decode(r.consent.rule).rule_id for r in rows if not r.withdrawn_at]
    rid = _pick(ids, s.args.id, "standing rule in force")
    withdrawn = s.holder.withdraw_standing_rule(rid)
    _out(s.args, _dict(withdrawn), f"Withdrew standing rule {rid.hex()}.")


# -- the parser -----------------------------------------------------------------------------


def _hexes(text: str) -> str:
    try:
        if len(bytes.fromhex(text)) != 32:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError("a SHA-256 is 64 hex digits") from None
    return text


def parser() -> argparse.ArgumentParser:
    """The command line, with help for every command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--wallet",
        type=Path,
        default=Path(os.environ.get("LICENTIA_WALLET", DEFAULT_WALLET)),
        help=f"the wallet file (default {DEFAULT_WALLET}) [LICENTIA_WALLET]",
    )
    common.add_argument(
        "--server",
        default=os.environ.get("LICENTIA_SERVER", DEFAULT_SERVER),
        help=f"the exchange, host:port (default {DEFAULT_SERVER}) [LICENTIA_SERVER]",
    )
    common.add_argument("--tls-ca", help="PEM certificate(s) to trust: talk TLS to the exchange")
    common.add_argument(
        "--passphrase-file",
        metavar="PATH|-",
        help="read the passphrase from the first line of PATH, or of stdin with '-'",
    )
    common.add_argument("--json", action="store_true", help="print one JSON document")
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[1], parents=[common])
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[Session], None], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, parents=[common])
        p.set_defaults(fn=fn)
        return p

    add(
        "init", cmd_init, "create your wallet: a new key, encrypted with your passphrase"
    ).add_argument(
        "--force", action="store_true", help="replace an existing wallet (its key is lost)"
    )
    add("whoami", cmd_whoami, "print your public key")
    p = add("register", cmd_register, "register at the exchange as a person who offers data")
    p.add_argument("--handle", required=True, help="a pseudonym: 3-32 of a-z 0-9 - _")
    p.add_argument("--name", help="a display name (optional)")
    assets = add("assets", lambda s: None, "declare and list the data you offer")
    asub = assets.add_subparsers(dest="assets_command", required=True, metavar="ACTION")
    p = asub.add_parser("add", help="declare a file (photo, voice sample, ...)", parents=[common])
    p.set_defaults(fn=cmd_assets_add)
    p.add_argument("file", help="the file")
    p.add_argument(
        "--category",
        required=True,
        type=lambda t: _enum(DataCategory, t),
        help="what it is: " + ", ".join(_name(c) for c in DataCategory),
    )
    p.add_argument("--label", help="a label for you (default: the file name)")
    p.add_argument(
        "--upload",
        action="store_true",
        help="store the bytes at the exchange, where licensees fetch them (each fetch is logged)",
    )
    p = asub.add_parser("list", help="list your assets", parents=[common])
    p.set_defaults(fn=cmd_assets_list)
    terms = add("terms", lambda s: None, "set and show what you offer, and at what price")
    tsub = terms.add_subparsers(dest="terms_command", required=True, metavar="ACTION")
    p = tsub.add_parser("set", help="set your terms, from flags or a TOML file", parents=[common])
    p.set_defaults(fn=cmd_terms_set)
    p.add_argument("--file", help="a TOML file with the same names as the flags (e.g. max_days)")
    p.add_argument("--categories", type=_enums(DataCategory), help="e.g. image,voice,name")
    p.add_argument("--purposes", type=_enums(Purpose), help="allowed, e.g. advertising,research")
    p.add_argument("--refuse", type=_enums(Purpose), help="never, e.g. political-campaign")
    p.add_argument("--media", type=_enums(Medium), help="e.g. online,social,print")
    p.add_argument(
        "--territories",
        type=lambda t: [x for x in t.split(",") if x],
        help="country codes or EU, EEA, WORLD",
    )
    p.add_argument("--price-per-day", type=_minor, help="e.g. 1.50 (in --currency)")
    p.add_argument("--currency", help="ISO 4217 code (default EUR)")
    p.add_argument("--max-days", type=int, help="the longest licence you grant (default 365)")
    p.add_argument(
        "--exclusive-multiplier",
        type=float,
        help="offer exclusivity at this multiple of the price, e.g. 3",
    )
    p = tsub.add_parser("show", help="show your terms", parents=[common])
    p.set_defaults(fn=cmd_terms_show)
    add("opt-out", cmd_opt_out, "object: stop every new request at once")
    add("opt-in", cmd_opt_in, "accept new requests again")
    add("inbox", cmd_inbox, "read the requests waiting for you, in plain words").add_argument(
        "--all", action="store_true", help="also the requests already answered"
    )
    p = add("approve", cmd_approve, "approve a request: sign its licence after reading it")
    p.add_argument("id", help="the request id from 'inbox' (or its first 6+ digits)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = add("decline", cmd_decline, "decline a request")
    p.add_argument("id", help="the request id from 'inbox' (or its first 6+ digits)")
    p.add_argument("--reason", help="a reason for the advertiser (optional)")
    add("licences", cmd_licences, "list every licence issued in your name")
    add("show", cmd_show, "show one licence in plain words").add_argument(
        "id", help="the licence id (or its first 6+ digits)"
    )
    add("revoke", cmd_revoke, "revoke a licence now; no reason needed").add_argument(
        "id", help="the licence id (or its first 6+ digits)"
    )
    add("accesses", cmd_accesses, "who fetched which of your assets")
    p = add("audit", cmd_audit, "check the public log: every licence in your name is yours")
    p.add_argument(
        "--log-key",
        help="the exchange's log key (licentia-server log-key prints it), or @FILE;"
        " without it, the key the exchange shows is trusted on first use",
    )
    add(
        "earnings", cmd_earnings, "what you have earned and can withdraw, and every payment"
    ).add_argument("--limit", type=int, default=50, help="payments shown (default 50)")
    p = add("withdraw", cmd_withdraw, "move money you have earned to your bank")
    p.add_argument("amount", type=_minor, help="e.g. 12.50")
    p.add_argument("--to", required=True, help="your payout reference, e.g. your IBAN")
    p.add_argument(
        "--idempotency-key",
        help="repeat the key a failed attempt printed, so a retry pays once (32 hex digits)",
    )
    add("export", cmd_export, "everything the exchange holds about you, as JSON").add_argument(
        "--output", help="write it to this file instead of the screen"
    )
    rules = add("rules", lambda s: None, "standing rules: approve matching requests for you")
    rsub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    p = rsub.add_parser(
        "add",
        help="sign a rule: requests entirely within it are approved without asking you"
        " (never political campaigns, AI training or opinions)",
        parents=[common],
    )
    p.set_defaults(fn=cmd_rules_add)
    p.add_argument("--categories", type=_enums(DataCategory), required=True, help="e.g. image")
    p.add_argument("--purposes", type=_enums(Purpose), required=True, help="e.g. advertising")
    p.add_argument("--media", type=_enums(Medium), required=True, help="e.g. online,social")
    p.add_argument(
        "--territories",
        type=lambda t: [x.strip().upper() for x in t.split(",") if x.strip()],
        required=True,
        help="country codes or EU, EEA, WORLD",
    )
    p.add_argument(
        "--min-price-per-day", type=_minor, required=True, help="e.g. 2.00 (in --currency)"
    )
    p.add_argument("--currency", default="EUR", help="ISO 4217 code (default EUR)")
    p.add_argument(
        "--max-term-days", type=int, default=30, help="longest licence it approves (default 30)"
    )
    p.add_argument("--days", type=int, default=90, help="how long the rule lasts (default 90)")
    p.add_argument("--max-uses", type=int, default=0, help="require at most this many uses")
    p.add_argument("--allow-exclusive", action="store_true", help="also exclusive licences")
    p.add_argument(
        "--sha256",
        action="append",
        default=[],
        type=_hexes,
        help="only these assets (default: all yours in the categories)",
    )
    p.add_argument(
        "--licensee", action="append", default=[], help="only this advertiser key (ed25519:…)"
    )
    p = rsub.add_parser("list", help="your standing rules", parents=[common])
    p.set_defaults(fn=cmd_rules_list)
    p = rsub.add_parser("withdraw", help="withdraw a standing rule", parents=[common])
    p.set_defaults(fn=cmd_rules_withdraw)
    p.add_argument("id", help="the rule id (or its first 6+ digits)")
    p = add("erase", cmd_erase, "erase your assets and revoke every live licence on them")
    p.add_argument("--sha256", action="append", default=[], type=_hexes, help="only this asset")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return ap


def _fail(message: str) -> NoReturn:
    print(_shown(f"{PROG}: error: {message}"), file=sys.stderr)
    raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``licentia-wallet``; returns the exit status (0 ok, 1 failed, 2 misuse)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    session = Session(args)
    try:
        args.fn(session)
    except (OperationFailedError, keystore.WalletError) as e:
        print(_shown(f"{PROG}: error: {e}"), file=sys.stderr)
        return 1
    except ExchangeError as e:
        print(_shown(f"{PROG}: error: the exchange refused: {e.reason.name}: {e}"), file=sys.stderr)
        hint = _HINTS.get(e.reason.name)
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        return 1
    except LicentiaError as e:
        print(_shown(f"{PROG}: error: {e.reason.name}: {e}"), file=sys.stderr)
        return 1
    finally:
        session.close()
    return 0


_HINTS = {
    "UNKNOWN_KEY": "register first: licentia-wallet register --handle NAME",
    "ALREADY_EXISTS": "that handle (or this key) is already registered",
    "INTERNAL": "the exchange had a problem; try again later",
    "UNAVAILABLE": "is the exchange running at --server (or LICENTIA_SERVER)?",
}


if __name__ == "__main__":
    sys.exit(main())
