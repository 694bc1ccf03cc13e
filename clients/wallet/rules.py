"""The wallet's ``rules`` commands: standing rules, which approve matching requests for you.

A rule is signed with your key over its exact bytes; requests entirely within it are
approved without asking you (never political campaigns, AI model training or opinions).
"""

from __future__ import annotations

import time

from licentia import keys
from licentia.errors import LicentiaError
from licentia.token import StandingRule
from licentia.v1 import records_pb2
from licentia.vocabulary import DataCategory

from ..holder import standing_rule
from .render import _money, _out, _when, _words, rule_dict
from .session import OperationFailedError, Session, _pick


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
        rule_dict(record),
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
            f" in {_words(sorted(rule.scope.media))},"
            f" in {', '.join(sorted(rule.scope.territories))}, at least"
            f" {_money(rule.min_price_per_day_minor, rule.currency)} a day,"
            f" {rule.max_term_seconds // 86400} days at most"
        )
    _out(s.args, [rule_dict(r) for r in rows], "\n".join(lines) or "No standing rule.")


def cmd_rules_withdraw(s: Session) -> None:
    """Withdraw a standing rule: new requests are asked again."""
    rows = _rules(s)
    ids = [StandingRule.decode(r.consent.rule).rule_id for r in rows if not r.withdrawn_at]
    rid = _pick(ids, s.args.id, "standing rule in force")
    withdrawn = s.holder.withdraw_standing_rule(rid)
    _out(s.args, rule_dict(withdrawn), f"Withdrew standing rule {rid.hex()}.")
