"""The wallet's ``profile`` commands: what the exchange shows of you, and to whom.

Your handle is a pseudonym for the exchange and for you; advertisers never see it. Your
display name is shown to advertisers in your offers only when you choose it (``profile set
--show-name``); by default an offer names nobody (docs/privacy.md).
"""

from __future__ import annotations

from licentia import keys
from licentia.v1 import records_pb2

from . import keystore
from .render import _dict, _out
from .session import MisuseError, Session


def _describe(profile: records_pb2.Profile) -> str:
    name = profile.display_name or "(none)"
    if not profile.display_name:
        shown = "advertisers see no name in your offers"
    elif profile.show_display_name:
        shown = "shown to advertisers in your offers"
    else:
        shown = "not shown: advertisers see no name in your offers"
    return "\n".join(
        [
            f"Handle: {profile.handle} (never shown to advertisers)",
            f"Name:   {name} ({shown})",
            f"Requests: {_objection(profile)}",
        ]
    )


def _objection(profile: records_pb2.Profile) -> str:
    if profile.objecting:
        return "you have opted out: no new request reaches you ('licentia-wallet opt-in' to undo)"
    return "open: advertisers can send you requests ('licentia-wallet opt-out' to stop them)"


def cmd_status(s: Session) -> None:
    """Your key, your account at the exchange, and whether you have opted out."""
    info = keystore.info(s.wallet)
    profile = s.holder.profile()
    doc = {
        "public_key": info.public.text,
        "account": keys.PublicKey(info.account).text,
        "handle": profile.handle,
        "opted_out": profile.objecting,
    }
    text = (
        f"Wallet:   {s.wallet}\nKey:      {info.public.text}\n"
        f"Exchange: {s.args.server}\n" + _describe(profile)
    )
    _out(s.args, doc, text)


def cmd_profile_show(s: Session) -> None:
    """Show your handle and display name, and whether your offers show the name."""
    profile = s.holder.profile()
    _out(s.args, _dict(profile), _describe(profile))


def cmd_profile_set(s: Session) -> None:
    """Change your display name, or whether your offers show it."""
    a = s.args
    if a.name is None and not a.no_name and a.show is None:
        raise MisuseError("say what to change: --name, --no-name, --show-name or --hide-name")
    if a.no_name:
        name = ""
    elif a.name is not None:
        name = a.name
    else:  # keep the name: only the choice changes
        name = s.holder.profile().display_name
    profile = s.holder.update_profile(name, show_display_name=a.show)
    _out(s.args, _dict(profile), _describe(profile))
