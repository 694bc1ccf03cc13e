"""What the wallet shows and reads: plain words, JSON, amounts, dates and vocabulary names.

No I/O but printing: every text the exchange sends passes through :func:`_shown`
(:func:`licentia.clients.shown.shown`, shared with the other clients) before it reaches a
terminal.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from licentia import keys
from licentia.token import (
    LicenceClaims,
    StandingRule,
    salted_digest,
)
from licentia.v1 import (
    ledger_pb2,
    records_pb2,
)
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..shown import shown

E = TypeVar("E", DataCategory, Purpose, Medium)


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


#: The one sanitiser of the clients (:func:`licentia.clients.shown.shown`), by the name the
#: wallet's modules import.
_shown = shown


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


def _out(args: argparse.Namespace, doc: Any, text: str) -> None:
    """One JSON document with --json, else the plain words."""
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))  # JSON escapes control characters
    else:
        print(_shown(text))


def _dict(msg: Message) -> dict[str, Any]:
    """A message in the wallet's JSON (docs/wallet-json.md): the protobuf JSON mapping with
    the field names of the .proto, zero values present and enums by name, except that
    64-bit integers are numbers (strings only beyond 2**53), public keys are ``ed25519:…``
    and other bytes (ids, digests, signatures) hex, as the text output shows them."""
    out = MessageToDict(
        msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    _recode(msg, out)
    return out


#: Integers a JSON number carries exactly (IEEE-754 doubles): larger ones stay strings.
MAX_SAFE_INTEGER = 2**53 - 1
_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}


def is_key_field(name: str) -> bool:
    """Whether a bytes field of this name holds an Ed25519 public key (an account id is one)."""
    if name in ("account", "key") or name.endswith(("_keys", "_key")):
        return name not in ("idempotency_key", "log_key")
    return False


#: The vocabulary's enums, printed by the names a person types (``image``,
#: ``direct-marketing``), not the .proto's (``DATA_CATEGORY_IMAGE``).
VOCABULARY: dict[str, type[DataCategory] | type[Purpose] | type[Medium]] = {
    "licentia.v1.DataCategory": DataCategory,
    "licentia.v1.Purpose": Purpose,
    "licentia.v1.Medium": Medium,
}


def _vocabulary(
    kind: type[DataCategory] | type[Purpose] | type[Medium], value: int, got: Any
) -> Any:
    try:
        return _name(kind(value))
    except ValueError:  # unspecified, or newer than this wallet: as the mapping has it
        return got


def _bytes(name: str, value: bytes) -> str:
    if is_key_field(name) and len(value) == 32:
        return keys.PublicKey(value).text
    return value.hex()


def _number(value: Any) -> Any:
    n = int(value)
    return n if abs(n) <= MAX_SAFE_INTEGER else str(n)


def _recode(msg: Message, out: dict[str, Any]) -> None:
    for field in msg.DESCRIPTOR.fields:
        if field.name not in out:
            continue
        value = getattr(msg, field.name)
        if field.type == FieldDescriptor.TYPE_BYTES:
            if field.is_repeated:
                out[field.name] = [_bytes(field.name, v) for v in value]
            else:
                out[field.name] = _bytes(field.name, value)
        elif field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
            kind = VOCABULARY.get(field.enum_type.full_name)
            if kind is not None:
                out[field.name] = (
                    [_vocabulary(kind, v, o) for v, o in zip(value, out[field.name], strict=True)]
                    if field.is_repeated
                    else _vocabulary(kind, value, out[field.name])
                )
        elif field.type in _INT64:
            got = out[field.name]
            out[field.name] = [_number(v) for v in got] if field.is_repeated else _number(got)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type is None or field.message_type.GetOptions().map_entry:
                continue  # no map in the wallet's messages carries bytes or 64-bit values
            if field.is_repeated:
                for sub_msg, sub_out in zip(value, out[field.name], strict=True):
                    _recode(sub_msg, sub_out)
            else:
                _recode(value, out[field.name])


def rule_dict(r: records_pb2.StandingRuleRecord) -> dict[str, Any]:
    """A standing rule as JSON: the record, and under ``rule`` the rule it signed, decoded
    (scope, assets, term, price, …)."""
    doc = _dict(r)
    doc["rule"] = _dict(StandingRule.decode(r.consent.rule).to_proto())
    return doc


def _hexes(text: str) -> str:
    try:
        if len(bytes.fromhex(text)) != 32:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError("a SHA-256 is 64 hex digits") from None
    return text


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


def _unknown(digest: bytes, salt: bytes) -> str:
    """How an asset none of the holder's labels names is shown: a salted digest means
    nothing to her, a plain one she may recognise."""
    return "not one of your declared assets" if salt else digest.hex()[:12] + "…"


def describe_claims(
    claims: LicenceClaims, who: str, labels: dict[bytes, str], *, ending: str = ""
) -> str:
    """A licence's claims in plain words; ``labels`` names the holder's assets by their plain
    SHA-256 (v2 claims name them salted for the licence: each is salted to be found).
    ``ending``: the last line in place of "You can revoke it at any moment." (a request that
    ended without a licence has nothing to revoke)."""
    c, p = claims, claims.price
    if c.asset_salt:
        labels = {salted_digest(c.asset_salt, d): label for d, label in labels.items()}
    data = ", ".join(
        f"{_name(a.category)} ({labels.get(a.sha256, _unknown(a.sha256, c.asset_salt))})"
        for a in c.assets
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
            ending or "You can revoke it at any moment.",
        ]
    )


_STATE = {v: k.removeprefix("REQUEST_STATE_").lower() for k, v in records_pb2.RequestState.items()}


_LSTATE = {v: k.removeprefix("LICENCE_STATE_").lower() for k, v in records_pb2.LicenceState.items()}


_KIND = {v: k.removeprefix("POSTING_KIND_").lower() for k, v in ledger_pb2.PostingKind.items()}


def fingerprint(public: bytes) -> str:
    """A key's short fingerprint for people: the first 8 base32 characters of its SHA-256
    (both devices of a pairing show it, for the holder to compare)."""
    return base64.b32encode(hashlib.sha256(public).digest()).decode()[:8]


def request_ending(r: records_pb2.LicenceRequest) -> str:
    """What a request that ended without a licence says in place of "You can revoke it at
    any moment" (empty for one pending or issued)."""
    if r.state in (records_pb2.REQUEST_STATE_PENDING, records_pb2.REQUEST_STATE_ISSUED):
        return ""
    if r.state == records_pb2.REQUEST_STATE_FAILED:
        return "No licence was issued: this request can no longer be approved. Nothing to do."
    return "No licence was issued for this request."
