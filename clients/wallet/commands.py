"""The wallet's commands but ``audit``: each reads its arguments, calls the holder SDK
(:mod:`licentia.clients.holder`) and prints what it did in plain words (or JSON).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from licentia import keys, pairwise
from licentia.token import (
    LicenceClaims,
    parse_token,
)
from licentia.v1 import (
    records_pb2,
)
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..channel import ExchangeError
from ..holder import new_idempotency_key
from . import keystore, payouts
from .render import (
    _KIND,
    _LSTATE,
    _STATE,
    E,
    _describe_terms,
    _dict,
    _enum,
    _minor,
    _money,
    _name,
    _out,
    _shown,
    _when,
    describe_claims,
    request_ending,
)
from .session import (
    OperationFailedError,
    Session,
    _confirm,
    _pick,
)
from .upload import ProgressBar, check_upload


def cmd_whoami(s: Session) -> None:
    """Print the wallet's public key, and its account when that is another key (a second
    device, a recovered wallet); no passphrase needed."""
    info = keystore.info(s.wallet)
    account = keys.PublicKey(info.account)
    text = info.public.text
    if account != info.public:
        text += f"\n(a device of the account {account.text})"
    _out(s.args, {"public_key": info.public.text, "account": account.text}, text)


def cmd_assets_add(s: Session) -> None:
    """Declare an asset (its digest; its bytes with --upload, streamed in chunks with a
    progress bar on stderr when it takes more than a second)."""
    path = Path(s.args.file)
    if s.args.upload:
        check_upload(s, path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise OperationFailedError(f"cannot read {path}: {e.strerror}") from None
    asset = s.holder.declare_asset(
        s.args.category,
        data,
        s.args.label or path.name,
        upload=s.args.upload,
        progress=ProgressBar(f"Uploading {path.name}") if s.args.upload else None,
    )
    stored = "stored at the exchange" if asset.has_content else "digest only"
    _out(
        s.args,
        _dict(asset),
        f"Declared {_name(s.args.category)} {path.name} ({stored})\n  sha256 {asset.sha256.hex()}",
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
        _known_keys_only(a.file, values)

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


#: The keys a terms file may hold: the ``terms set`` flags' names, with ``_``.
TERMS_KEYS = (
    "categories",
    "purposes",
    "refuse",
    "media",
    "territories",
    "price_per_day",
    "currency",
    "max_days",
    "exclusive_multiplier",
)


def _known_keys_only(path: str, values: dict[str, Any]) -> None:
    """Refuse a terms file with a key it does not know, naming the nearest valid one (a
    mistyped ``max_dayz`` must not leave the term at its default)."""
    for key in values:
        if key in TERMS_KEYS:
            continue
        near = difflib.get_close_matches(key.replace("-", "_"), TERMS_KEYS, n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]!r}?)" if near else f" (valid: {', '.join(TERMS_KEYS)})"
        raise OperationFailedError(f"{path}: unknown key {key!r}{hint}; nothing was sent")


def cmd_terms_set(s: Session) -> None:
    """Set what you offer, and at what price."""
    wanted = _terms_from_args(s)  # a wrong file is refused before the passphrase is asked
    terms = s.holder.set_terms(**wanted)
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


def _inbox(s: Session, include_answered: bool) -> list[records_pb2.LicenceRequest]:
    return s.holder.inbox(include_answered)


def cmd_inbox(s: Session) -> None:
    """Show the requests waiting for your answer, in plain words, and the exchange's notices
    about your account (a payout destination added, say)."""
    requests = _inbox(s, s.args.all)
    notices = s.holder.notices()
    labels = _labels(s) if requests else {}
    blocks = [f"Notice ({_when(n.at)}): {n.text}" for n in notices]
    for r in requests:
        claims = LicenceClaims.decode(r.claims)
        head = (
            f"Request {r.request_id.hex()} ({_STATE.get(r.state, f'state {r.state}')},"
            f" answer before {_when(r.expires_at)})"
        )
        blocks.append(
            head
            + "\n"
            + describe_claims(claims, _advertiser_of(r), labels, ending=request_ending(r))
        )
    _out(
        s.args,
        {"requests": [_dict(r) for r in requests], "notices": [_dict(n) for n in notices]},
        "\n\n".join(blocks if requests else [*blocks, "No request is waiting for you."]),
    )


def cmd_approve(s: Session) -> None:
    """Approve a request: sign its exact claims after reading them."""
    pending = _inbox(s, False)
    rid = _pick([r.request_id for r in pending], s.args.id, "pending request")
    request = next(r for r in pending if r.request_id == rid)
    claims = LicenceClaims.decode(request.claims)
    if claims.holder != s.key.public:
        raise OperationFailedError("this request is not addressed to this wallet's key")
    if not s.args.json:
        text = describe_claims(claims, _advertiser_of(request), _labels(s))
        print(_shown(text), file=sys.stderr)
    _confirm(s, "Sign this licence?")
    # Signed with this holder's key for this advertiser alone (token-format §1b).
    licence = s.holder.approve(request, holder_secret=s.holder_secret)
    _out(
        s.args,
        _dict(licence),
        f"Approved. Licence {licence.licence_id.hex()} is issued;"
        f" revoke it any time with 'licentia-wallet revoke {licence.licence_id.hex()[:12]}'.",
    )


def cmd_decline(s: Session) -> None:
    """Decline a request."""
    pending = _inbox(s, False)
    rid = _pick([r.request_id for r in pending], s.args.id, "pending request")
    declined = s.holder.decline(rid, s.args.reason or "")
    _out(s.args, _dict(declined), f"Declined request {rid.hex()}.")


def _my_licences(s: Session) -> list[records_pb2.LicenceRecord]:
    return s.holder.licences()


def cmd_licences(s: Session) -> None:
    """List every licence issued in your name."""
    rows = _my_licences(s)
    organisations = _organisations(s) if rows else {}
    lines = [
        f"{x.licence_id.hex()}  {_LSTATE[x.state]:<8} until {_when(x.not_after)}"
        f"  uses {x.uses}{'/' + str(x.max_uses) if x.max_uses else ''}"
        f"  {_advertiser(organisations.get(x.request_id, ''), x.licensee_key)}"
        for x in rows
    ]
    docs = [
        {**_dict(x), "licensee_organisation": organisations.get(x.request_id, "")} for x in rows
    ]
    _out(s.args, docs, "\n".join(lines) or "No licence yet.")


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
            if x.holder_key == s.holder.account:
                return x
        raise OperationFailedError(f"no licence {full} in your name")
    rows = _my_licences(s)
    lid = _pick([x.licence_id for x in rows], text, "licence")
    return next(x for x in rows if x.licence_id == lid)


def _organisations(s: Session) -> dict[bytes, str]:
    """The advertiser's organisation of each request in her inbox (answered ones too), by
    request id: how a licence (which names the request) names its advertiser."""
    return {r.request_id: r.advertiser_organisation for r in s.holder.inbox(True)}


def _advertiser_of(r: records_pb2.LicenceRequest) -> str:
    return _advertiser(r.advertiser_organisation, r.advertiser_key)


def _advertiser(organisation: str, key: bytes) -> str:
    """An advertiser for people: the organisation, with its key shortened beside it."""
    if len(key) != 32:
        return organisation or "an unnamed advertiser"
    short = keys.PublicKey(key).text[:20] + "…"
    return f"{organisation} ({short})" if organisation else f"licensee {short}"


def cmd_show(s: Session) -> None:
    """Show one licence in plain words."""
    x = _licence(s, s.args.id)
    claims = parse_token(x.token).claims
    organisation = _organisations(s).get(x.request_id, "")
    text = (
        f"Licence {x.licence_id.hex()} ({_LSTATE[x.state]}, uses so far: {x.uses})\n"
        + describe_claims(claims, _advertiser(organisation, x.licensee_key), _labels(s))
    )
    doc = _dict(x)
    doc["licensee_organisation"] = organisation
    try:
        secret: bytes | None = s.holder_secret
    except OperationFailedError:  # a joined device still waiting for it: nothing to say
        secret = None
    pseudonym = pairwise.pairwise_key(secret, x.licensee_key).public if secret else None
    if pseudonym is not None and claims.holder == pseudonym:
        doc["pseudonym"] = True
        text += (
            f"\nSigned with your pseudonym for this licensee ({pseudonym.text}): no other"
            " advertiser sees this key."
        )
    _out(s.args, doc, text)


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
    """Who fetched which of your assets, and when: the advertiser by its organisation."""
    accesses = s.holder.accesses()
    labels = _labels(s) if accesses else {}
    requests = {x.licence_id: x.request_id for x in _my_licences(s)} if accesses else {}
    organisations = _organisations(s) if accesses else {}
    docs, lines = [], []
    for a in accesses:
        organisation = organisations.get(requests.get(a.licence_id, b""), "")
        docs.append({**_dict(a), "licensee_organisation": organisation})
        lines.append(
            f"{_when(a.accessed_at)}  {labels.get(a.sha256, a.sha256.hex()[:12])}"
            f"  by {_advertiser(organisation, a.licensee_key)}"
            f"  under licence {a.licence_id.hex()[:12]}"
        )
    _out(s.args, docs, "\n".join(lines) or "Nobody has fetched your data.")


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
    doc = _dict(resp)
    payouts.destinations_for_earnings(s, doc, lines)
    _out(s.args, doc, "\n".join(lines))


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
    except ExchangeError as e:
        payouts.explain_refusal(s, e, s.args.to)
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


def cmd_export(s: Session) -> None:
    """Everything the exchange holds about you, as JSON (the right of access)."""
    resp = s.holder.export()
    text = json.dumps(_dict(resp), indent=2, sort_keys=True)
    if s.args.output:
        # Personal data: readable by her alone, whatever the umask (as the wallet file).
        fd = os.open(s.args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a file that was there keeps no wider mode
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
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
