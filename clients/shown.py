"""Text safe to put before a person's eyes on a terminal, whoever wrote it.

Every client that prints text it did not write — what the exchange sends (terms, messages),
what a file carries (a C2PA certificate's organisation and common name, a licence's
assertion) — passes it through :func:`shown` first: the wallet, ``licentia-verify --file``
and the platform SDK's upload text share this one definition.
"""

from __future__ import annotations

__all__ = ["shown"]


def shown(text: str, *, one_line: bool = False) -> str:
    """``text`` safe to put before a person's eyes on a terminal: every control or format
    character (escape sequences, bidirectional overrides, …) but the line breaks is shown
    as its code, so nothing the exchange sends or a file carries can rewrite or hide what
    is printed (the terms a holder reads before signing, a DENY above an attacker's name).
    ``one_line`` shows the line breaks as codes too: for a name put inside one line, which
    must not start a line of its own (a fake verdict)."""
    if text.isprintable():
        return text
    keep = "" if one_line else "\n"
    return "".join(c if c == keep or c.isprintable() else f"\\u{{{ord(c):04x}}}" for c in text)
