"""``licentia-wallet devices``: the keys of the holder's account, as people see them.

``list`` shows the current keys (name, role, short fingerprint, this device) and the removed
ones (cause, time); ``add`` opens a pairing and waits for the new device (``join`` there),
then adds it once the holder compared the fingerprints; ``approve`` does that last step
alone; ``remove`` takes a device out, as retired or as compromised; and ``revoke-consents``
reviews and revokes what a (removed) device consented to.

Why ``--since`` defaults to the moment the key was added: the exchange cannot know when a
laptop was stolen, so by default everything the key approved that is still in force is
listed, and the list is shown before anything is revoked.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from dataclasses import dataclass

from licentia import keys, keyset
from licentia.errors import LicentiaError
from licentia.token import StandingRule, parse_token
from licentia.v1 import records_pb2

from ..accounts import VerifiedKeySet
from ..channel import ExchangeError
from .render import (
    _dict,
    _money,
    _out,
    _shown,
    _when,
    _words,
    describe_claims,
    fingerprint,
    rule_dict,
)
from .session import MisuseError, OperationFailedError, Session, _confirm, ask

_ROLE: dict[int, str] = {keyset.DEVICE: "device", keyset.RECOVERY: "recovery"}
_CAUSE: dict[int, str] = {keyset.RETIRED: "retired", keyset.COMPROMISED: "compromised"}


def since_time(text: str) -> int:
    """``--since``: an ISO date or date and time (UTC unless it says), or Unix seconds."""
    t = text.strip()
    if t.isdigit():
        return int(t)
    try:
        when = datetime.datetime.fromisoformat(t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "a date (2026-12-01), a date and time (2026-12-01T14:30, UTC unless given)"
            " or Unix seconds"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0, int(when.timestamp()))


def _iso(t: int) -> str:
    """``t`` as ``--since`` reads it back."""
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Key:
    public: bytes
    role: int
    name: str
    removed_at: int = 0
    cause: int = 0

    @property
    def label(self) -> str:
        return f"{self.name or 'the first device'} ({fingerprint(self.public)})"


def _added_at(found: VerifiedKeySet, public: bytes) -> int:
    """When ``public`` was last added to the set (0 for the account's first key)."""
    at = 0
    for before, after, signed in zip(
        found.sets[:-1], found.sets[1:], found.answer.changes, strict=True
    ):
        if after.key(public) is not None and before.key(public) is None:
            at = keyset.decode_change(signed).change.at
    return at


def _keys(found: VerifiedKeySet, *, removed: bool) -> list[_Key]:
    out = [_Key(k.public, k.role, k.name) for k in found.current.keys]
    if removed:
        out += [
            _Key(k.public_key, k.role, k.name, k.removed_at, k.cause) for k in found.answer.removed
        ]
    return out


def _find(found: VerifiedKeySet, text: str, *, removed: bool) -> _Key:
    """The key ``text`` names: ``ed25519:…``, or a fingerprint (or its first 4+ characters)."""
    t = text.strip()
    candidates = _keys(found, removed=removed)
    if t.startswith("ed25519:"):
        try:
            raw = keys.PublicKey.from_text(t).raw
        except LicentiaError:
            raise OperationFailedError(f"{t!r} is not a public key") from None
        hits = [k for k in candidates if k.public == raw]
    else:
        hits = [
            k for k in candidates if len(t) >= 4 and fingerprint(k.public).startswith(t.upper())
        ]
    if len({k.public for k in hits}) != 1:
        raise OperationFailedError(
            f"no single key {t!r} in your account: 'licentia-wallet devices list' shows them"
        )
    return hits[0]


def cmd_devices_list(s: Session) -> None:
    """The account's keys now, and the removed ones."""
    found = s.holder.key_set()
    me = s.key.public.raw
    rows = []
    lines = [f"Your account's keys (change {found.current.sequence}):"]
    for k in _keys(found, removed=False):
        added = _added_at(found, k.public)
        rows.append(
            {
                "public_key": keys.PublicKey(k.public).text,
                "fingerprint": fingerprint(k.public),
                "name": k.name,
                "role": _ROLE.get(k.role, str(k.role)),
                "added_at": added,
                "this_device": k.public == me,
            }
        )
        lines.append(
            f"  {fingerprint(k.public)}  {_ROLE.get(k.role, '?'):<8}"
            f"  {k.name or '(first device)':<20}"
            + (f"  added {_when(added)}" if added else "")
            + ("  <- this device" if k.public == me else "")
        )
    gone: list[dict[str, str | int]] = []
    for r in found.answer.removed:
        gone.append(
            {
                "public_key": keys.PublicKey(r.public_key).text,
                "fingerprint": fingerprint(r.public_key),
                "name": r.name,
                "role": _ROLE.get(r.role, str(r.role)),
                "cause": _CAUSE.get(r.cause, str(r.cause)),
                "removed_at": r.removed_at,
            }
        )
    if gone:
        lines.append("Removed:")
        lines += [
            f"  {g['fingerprint']}  {g['role']:<8}  {g['name'] or '(first device)':<20}"
            f"  {g['cause']} {_when(int(g['removed_at']))}"
            for g in gone
        ]
    doc = {
        "account": keys.PublicKey(found.current.account).text,
        "sequence": found.current.sequence,
        "keys": rows,
        "removed": gone,
    }
    _out(s.args, doc, "\n".join(lines))


def _approve(s: Session, code: str) -> None:
    joined = s.holder.pairing(code)
    if not joined.HasField("key"):
        raise OperationFailedError(
            f"no device has joined with code {code} yet:"
            f" run 'licentia-wallet join {code} --name NAME' on it first"
        )
    fp = fingerprint(joined.key.public_key)
    current = s.holder.key_set().current
    if current.key(joined.key.public_key) is not None:  # added already: the secret is missing
        _seal(s, code, joined.key.public_key)
        _out(
            s.args,
            {"added": keys.PublicKey(joined.key.public_key).text, "fingerprint": fp},
            f"{joined.key.name} ({fp}) is in your account already; sent it your holder secret.",
        )
        return
    if not s.args.json:
        print(
            _shown(
                f"Device '{joined.key.name}' asks to join your account; its fingerprint is {fp}."
                "\nCheck that the new device shows the same fingerprint."
            ),
            file=sys.stderr,
        )
    _confirm(s, f"Add device {fp} to your account?")
    done = s.holder.approve_pairing(code, joined.key.public_key)
    _seal(s, code, joined.key.public_key)
    _out(
        s.args,
        {
            "added": keys.PublicKey(joined.key.public_key).text,
            "fingerprint": fp,
            "sequence": done.key_set.sequence,
        },
        f"Added {joined.key.name} ({fp}) to your account: it can now act in your name.",
    )


def _seal(s: Session, code: str, confirmed: bytes) -> None:
    """Leave the holder secret, sealed to the device that joined ``code`` (``confirmed``: the
    key shown; now in the account), for it to fetch: it then consents with the same pairwise
    keys as this one."""
    try:
        s.holder.seal_pairing(code, s.holder_secret, confirmed)
    except (ExchangeError, LicentiaError) as e:
        why = f"{e.reason.name}: {e}"
        raise OperationFailedError(
            f"the device is in your account, but your holder secret could not be sent to it"
            f" ({why}); run 'licentia-wallet devices approve {code}' again"
        ) from None


def cmd_devices_add(s: Session) -> None:
    """Open a pairing, wait for the new device to join, and add it after confirmation."""
    started = s.holder.start_pairing()
    code, expires = started.code, started.expires_at
    how = (
        f"On the new device run: licentia-wallet join {code} --name NAME"
        f"\nThe code works until {_when(expires)}."
    )
    if s.args.no_wait:
        _out(
            s.args,
            {"code": code, "expires_at": expires},
            f"Pairing code: {code}\n{how}\nThen here: licentia-wallet devices approve {code}",
        )
        return
    print(
        f"Pairing code: {code}\n{how}\nWaiting for the new device...", file=sys.stderr, flush=True
    )
    while not s.holder.pairing(code).HasField("key"):
        if time.time() >= expires:
            raise OperationFailedError(
                "no device joined before the code expired: run 'licentia-wallet devices add' again"
            )
        _pause()
    _approve(s, code)


def _pause() -> None:
    """A second between two looks at the pairing."""
    time.sleep(1)


def cmd_devices_approve(s: Session) -> None:
    """Add the device that joined the pairing CODE (after 'devices add --no-wait')."""
    _approve(s, s.args.code)


def _cause(s: Session) -> bool:
    """True for compromised, False for retired: from the flags, else asked."""
    if s.args.compromised or s.args.retired:
        return bool(s.args.compromised)
    if s.args.yes or not sys.stdin.isatty():
        raise MisuseError("say why the key goes: --compromised (lost or stolen) or --retired")
    answer = ask("Was the device lost or stolen (c: compromised), or retired (r)? [c/r] ")
    if answer.strip().lower() in ("c", "compromised"):
        return True
    if answer.strip().lower() in ("r", "retired"):
        return False
    raise OperationFailedError("nothing done")


def _describe_licence(x: records_pb2.LicenceRecord, who: dict[bytes, str]) -> str:
    claims = parse_token(x.token).claims
    head = f"Licence {x.licence_id.hex()}"
    name = who.get(x.request_id) or "licensee " + claims.licensee.text
    return head + "\n" + describe_claims(claims, name, {})


def _describe_rule(rule: StandingRule) -> str:
    return (
        f"Standing rule {rule.rule_id.hex()}: {_words(sorted(rule.scope.categories))} for"
        f" {_words(sorted(rule.scope.purposes))} in {', '.join(sorted(rule.scope.territories))},"
        f" at least {_money(rule.min_price_per_day_minor, rule.currency)} a day,"
        f" until {_when(rule.not_after)}"
    )


def _review(s: Session, key: _Key, since: int, revoke: bool, doc: dict[str, object]) -> list[str]:
    """List what ``key`` consented to since ``since`` that is still in force; with
    ``revoke``, after confirmation, revoke those licences and withdraw those rules."""
    found = s.holder.consents(key.public, since)
    rules = [StandingRule.decode(r.consent.rule) for r in found.rules]
    who = (  # the advertisers' organisations, from the requests the licences answered
        {r.request_id: r.advertiser_organisation for r in s.holder.inbox(True)}
        if found.licences
        else {}
    )
    blocks = [_describe_licence(x, who) for x in found.licences]
    blocks += [_describe_rule(r) for r in rules]
    doc["since"] = since
    doc["licences"] = [_dict(x) for x in found.licences]
    doc["rules"] = [rule_dict(r) for r in found.rules]
    doc["truncated"] = found.truncated
    doc["revoked"] = False
    head = f"What {key.label} consented to since {_when(since)} that is still in force:"
    if not blocks:
        return [f"{key.label} consented to nothing still in force since {_when(since)}."]
    lines = [head, *blocks]
    if found.truncated:
        lines.append("(more than shown: run the command again once these are revoked)")
    if not revoke:
        lines.append(
            "To revoke them: licentia-wallet devices revoke-consents"
            f" {fingerprint(key.public)} --since {_iso(since)}"
        )
        return lines
    if not s.args.json:
        print(_shown("\n\n".join(lines)), file=sys.stderr)
    _confirm(
        s, f"Revoke these {len(found.licences)} licence(s) and withdraw these {len(rules)} rule(s)?"
    )
    for x in found.licences:
        s.holder.revoke(x.licence_id)
    for r in rules:
        s.holder.withdraw_standing_rule(r.rule_id)
    doc["revoked"] = True
    return [
        f"Revoked {len(found.licences)} licence(s) and withdrew {len(rules)} standing rule(s)"
        f" that {key.label} consented to since {_when(since)}."
    ]


def cmd_devices_remove(s: Session) -> None:
    """Remove a device key: as compromised (stopped at once; then review what it consented
    to, and with --revoke revoke it) or as retired (what it signed stays valid)."""
    found = s.holder.key_set()
    key = _find(found, s.args.key, removed=False)
    if key.public == s.key.public.raw:
        raise OperationFailedError(
            "that is this device's key: remove it from another device (or 'recover')"
        )
    if key.role != keyset.DEVICE:
        raise OperationFailedError("that is the recovery key: only devices are removed here")
    compromised = _cause(s)
    if s.args.revoke and not compromised:
        raise MisuseError("--revoke goes with --compromised: what a retired device signed stays")
    cause = "compromised" if compromised else "retired"
    since = s.args.since if s.args.since is not None else _added_at(found, key.public)
    _confirm(s, f"Remove {key.label} as {cause}?")
    done = s.holder.remove_key(key.public, compromised=compromised)
    doc: dict[str, object] = {
        "removed": keys.PublicKey(key.public).text,
        "fingerprint": fingerprint(key.public),
        "cause": cause,
        "sequence": done.key_set.sequence,
    }
    lines = [f"Removed {key.label} as {cause}: any call it makes is refused (KEY_REMOVED)."]
    if compromised:
        lines += _review(s, key, since, s.args.revoke, doc)
    else:
        lines.append("It was retired: what it signed stays valid.")
    _out(s.args, doc, "\n\n".join(lines))


def cmd_devices_revoke_consents(s: Session) -> None:
    """Review and revoke what a key (a removed one too) consented to since --since."""
    found = s.holder.key_set()
    key = _find(found, s.args.key, removed=True)
    since = s.args.since if s.args.since is not None else _added_at(found, key.public)
    doc: dict[str, object] = {"key": keys.PublicKey(key.public).text}
    _out(s.args, doc, "\n\n".join(_review(s, key, since, True, doc)))
