"""Pseudonyms: which account, and which licensee account, each pairwise holder key serves
(docs/token-format.md §1b), recorded with the first licence that names it.

A pseudonym is never a key of an account (current or removed), and serves one account and one
licensee only: anything else is PSEUDONYM_TAKEN, raised inside the issuing transaction, so a
refused approval stores nothing.
"""

from __future__ import annotations

from licentia.errors import LicentiaError, Reason

from ._sql import Conn


def record_pseudonym(c: Conn, key: bytes, account: bytes, licensee: bytes, now: int) -> None:
    """Record ``key`` as ``account``'s pseudonym for ``licensee`` (nothing if it is already);
    PSEUDONYM_TAKEN when it is an account key or serves another account or licensee."""
    if c.execute("SELECT 1 FROM account_keys WHERE public_key = ?", (key,)).fetchone():
        raise LicentiaError(Reason.PSEUDONYM_TAKEN, "that key is a key of an account")
    c.execute(
        "INSERT INTO pseudonyms (key, account, licensee_account, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
        (key, account, licensee, now),
    )
    r = c.execute(
        "SELECT account, licensee_account FROM pseudonyms WHERE key = ?", (key,)
    ).fetchone()
    if r is None or (bytes(r[0]), bytes(r[1])) != (account, licensee):
        raise LicentiaError(
            Reason.PSEUDONYM_TAKEN,
            "that key is already the pseudonym of another account or for another licensee",
        )
