"""``licentia-wallet delete-account``: erase the holder's whole account at the exchange.

The command asks her to type her handle (or takes ``--yes``), fetches the exchange's issuer
keys, sends the signed ``DeleteAccount`` call, checks the signed receipt it gets back
(:func:`licentia.erasure.verify_erasure_receipt`), saves it, and only then removes the
wallet file and its audit state, whose keys can do nothing any more. A refusal (money
still owed to her, say) changes nothing, at the exchange or here.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from pathlib import Path

from licentia.erasure import verify_erasure_receipt

from .render import _dict, _out
from .session import OperationFailedError, Session, ask

__all__ = ["cmd_delete_account"]


def _confirmed(s: Session, handle: str) -> bool:
    """Whether she confirmed: ``--yes``, or her handle typed on the terminal."""
    if s.args.yes:
        return True
    if not sys.stdin.isatty() or s.args.passphrase_file == "-":  # noqa: S105 - "-" is stdin
        raise OperationFailedError("confirm with --yes (no terminal to ask); nothing was deleted")
    typed = ask(
        f"This deletes your account '{handle}' at the exchange for good: every live licence"
        " is revoked, your assets, terms, rules and profile are erased, and this wallet's"
        " keys stop working. Type your handle to confirm: "
    )
    return typed.strip() == handle


def cmd_delete_account(s: Session) -> None:
    """Delete your account at the exchange, keep the signed receipt, then remove the wallet."""
    holder = s.holder
    profile = holder.profile()
    if not _confirmed(s, profile.handle):
        raise OperationFailedError("the handle typed is not yours: nothing was deleted")
    issuer_keys = holder.issuer_keys()  # before: the keys of a deleted account sign nothing
    signed = holder.delete_account()
    receipt = verify_erasure_receipt(signed, issuer_keys, profile.key)
    doc = {
        # The exact signed bytes, to check again with any implementation (token-format §10c).
        "signed_receipt_base64": base64.b64encode(signed.SerializeToString()).decode(),
        "signed_receipt": _dict(signed),
        "receipt": _dict(receipt),
    }
    target = Path(s.args.receipt) if s.args.receipt else s.wallet.with_name("erasure-receipt.json")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    # The exchange confirmed, and its receipt is safe: only now is anything removed here.
    s.wallet.unlink(missing_ok=True)
    shutil.rmtree(s.wallet.with_name(s.wallet.name + ".audit"), ignore_errors=True)
    _out(
        s.args,
        doc,
        f"Deleted your account at the exchange at {receipt.erased_at}: revoked"
        f" {len(receipt.revoked_licence_ids)} licence(s), erased {receipt.assets_erased}"
        f" asset(s); every row about you erased from {', '.join(receipt.erased)}.\n"
        f"Kept: {'; '.join(receipt.kept)}.\n"
        f"Logged as entry {receipt.log_index}; signed by the exchange's issuer key"
        f" {signed.issuer_key_id.hex()}.\n"
        f"The exchange's signed receipt (checked) is saved in {target};"
        f" removed the wallet file {s.wallet}: its keys can do nothing any more.",
    )
