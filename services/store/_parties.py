"""The parties, their assets and terms, and standing rules (part of :class:`.common.SqlStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from licentia.errors import LicentiaError, Reason
from licentia.scope import Scope
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..model import (
    AssetRow,
    Party,
    Role,
    StandingRuleRow,
    Terms,
)
from ._sql import Conn, SqlBase, _ints, _parse_ints
from .base import SpentNonce

_SIX = ", ".join("?" * 6)


class PartiesPart(SqlBase):
    """Parties, assets, terms and standing rules."""

    # -- parties -------------------------------------------------------------------------
    _PARTY = "key, role, handle, display_name, country, registered_at, objecting, show_name"
    _PARTY_COLUMNS = 8

    @staticmethod
    def _party(r: Sequence[Any]) -> Party:
        return Party(r[0], Role(r[1]), r[2] or "", r[3], r[4], r[5], bool(r[6]), bool(r[7]))

    def add_party(self, party: Party, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Register a party, its key the first of its account's set; ALREADY_EXISTS if its
        key or handle is taken (a key that is, or was, any account's key included)."""

        def change(c: Conn) -> None:
            if c.execute(
                "SELECT 1 FROM account_keys WHERE public_key = ?"
                " UNION ALL SELECT 1 FROM pseudonyms WHERE key = ?",
                (party.key, party.key),
            ).fetchone():
                raise LicentiaError(
                    Reason.ALREADY_EXISTS,
                    "this key is (or was) a key of an account (or a pseudonym)",
                )
            if self._erased(c, party.key):
                raise LicentiaError(
                    Reason.ACCOUNT_ERASED,
                    "this key was a key of an account since deleted: make a new wallet",
                )
            c.execute(
                f"INSERT INTO parties ({self._PARTY}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    party.key,
                    int(party.role),
                    party.handle or None,
                    party.display_name,
                    party.country,
                    party.registered_at,
                    int(party.objecting),
                    int(party.show_name),
                ),
            )
            c.execute(
                "INSERT INTO account_keys (public_key, account, role, name, added_seq,"
                " added_at) VALUES (?, ?, 1, '', 0, ?)",
                (party.key, party.key, party.registered_at),
            )

        try:
            self._transact(change, nonces)
        except self._INTEGRITY:
            raise LicentiaError(Reason.ALREADY_EXISTS, "key or handle already registered") from None

    def party(self, key: bytes) -> Party | None:
        """The party with this key."""
        r = self._row(f"SELECT {self._PARTY} FROM parties WHERE key = ?", (key,))
        return self._party(r) if r else None

    def holders_by_prefix(self, prefix: bytes) -> list[Party]:
        """The holders whose account key starts with ``prefix`` (16 bytes), at most two."""
        if len(prefix) != 16:
            return []
        rows = self._rows(
            f"SELECT {self._PARTY} FROM parties WHERE key >= ? AND key <= ? AND role = ?"
            " ORDER BY key LIMIT 2",
            (prefix + bytes(16), prefix + b"\xff" * 16, int(Role.HOLDER)),
        )
        return [self._party(r) for r in rows]

    def platforms(self, after_handle: str, limit: int) -> list[Party]:
        """Registered platforms by platform id, after ``after_handle`` (at most ``limit``)."""
        rows = self._rows(
            f"SELECT {self._PARTY} FROM parties WHERE role = ? AND handle > ?"
            " ORDER BY handle LIMIT ?",
            (int(Role.PLATFORM), after_handle, limit),
        )
        return [self._party(r) for r in rows]

    def update_party(
        self,
        key: bytes,
        *,
        display_name: str | None = None,
        objecting: bool | None = None,
        show_name: bool | None = None,
        nonces: Sequence[SpentNonce] = (),
    ) -> Party:
        """Change a party's display name, whether offers show it, or its objection;
        NOT_FOUND if unknown."""

        def change(c: Conn) -> Party:
            if display_name is not None:
                c.execute("UPDATE parties SET display_name = ? WHERE key = ?", (display_name, key))
            if objecting is not None:
                c.execute("UPDATE parties SET objecting = ? WHERE key = ?", (int(objecting), key))
            if show_name is not None:
                c.execute("UPDATE parties SET show_name = ? WHERE key = ?", (int(show_name), key))
            r = c.execute(f"SELECT {self._PARTY} FROM parties WHERE key = ?", (key,)).fetchone()
            if r is None:
                raise LicentiaError(Reason.NOT_FOUND, "no such party")
            return self._party(r)

        return self._transact(change, nonces)

    # -- assets and terms ----------------------------------------------------------------
    _ASSET = "holder_key, sha256, category, label, content_size, content IS NOT NULL, declared_at"

    @staticmethod
    def _asset(r: tuple[Any, ...]) -> AssetRow:
        return AssetRow(r[0], r[1], DataCategory(r[2]), r[3], r[4], bool(r[5]), r[6])

    def put_asset(
        self, row: AssetRow, content: bytes | bytearray | None, *, nonces: Sequence[SpentNonce] = ()
    ) -> AssetRow:
        """Declare or rectify an asset: its label and category are replaced; its stored
        bytes are replaced when ``content`` is given and kept otherwise (erasure deletes)."""

        def change(c: Conn) -> AssetRow:
            self._alive(c, row.holder_key)
            seq = c.execute(
                "UPDATE counters SET value = value + 1 WHERE name = 'asset_seq' RETURNING value"
            ).fetchone()[0]
            c.execute(
                "INSERT INTO assets (holder_key, sha256, category, label, content, content_size,"
                " declared_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (holder_key, sha256) DO UPDATE SET category = excluded.category,"
                " label = excluded.label, content = coalesce(excluded.content, assets.content),"
                " content_size = coalesce(length(coalesce(excluded.content, assets.content)), 0),"
                " declared_at = excluded.declared_at",
                (
                    row.holder_key,
                    row.sha256,
                    int(row.category),
                    row.label,
                    content,
                    len(content) if content is not None else 0,
                    row.declared_at,
                    seq,
                ),
            )
            r = c.execute(
                f"SELECT {self._ASSET} FROM assets WHERE holder_key = ? AND sha256 = ?",
                (row.holder_key, row.sha256),
            ).fetchone()
            return self._asset(r)

        return self._transact(change, nonces)

    def assets(self, holder_key: bytes) -> list[AssetRow]:
        """The holder's assets, oldest first."""
        rows = self._rows(
            f"SELECT {self._ASSET} FROM assets WHERE holder_key = ? ORDER BY seq", (holder_key,)
        )
        return [self._asset(r) for r in rows]

    def declared_digests(self, digests: Sequence[bytes]) -> set[bytes]:
        """Those of ``digests`` that are the SHA-256 of an asset some holder declared (one
        indexed lookup each, m020; the caller caps how many)."""
        if not digests:
            return set()
        marks = ", ".join("?" * len(digests))
        rows = self._rows(
            f"SELECT DISTINCT sha256 FROM assets WHERE sha256 IN ({marks})", list(digests)
        )
        return {bytes(r[0]) for r in rows}

    def asset_content(self, holder_key: bytes, sha256: bytes) -> bytes | None:
        """The stored bytes of an asset, if any."""
        r = self._row(
            "SELECT content FROM assets WHERE holder_key = ? AND sha256 = ?", (holder_key, sha256)
        )
        return r[0] if r else None

    def set_terms(
        self, holder_key: bytes, terms: Terms, *, nonces: Sequence[SpentNonce] = ()
    ) -> None:
        """Replace the holder's terms."""
        s = terms.scope
        sql = (
            "INSERT INTO terms VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (holder_key) DO UPDATE SET categories = excluded.categories,"
            " purposes = excluded.purposes, refused = excluded.refused, media = excluded.media,"
            " territories = excluded.territories, currency = excluded.currency,"
            " price_per_day_minor = excluded.price_per_day_minor,"
            " max_term_seconds = excluded.max_term_seconds,"
            " exclusivity_offered = excluded.exclusivity_offered,"
            " exclusivity_multiplier_bps = excluded.exclusivity_multiplier_bps,"
            " updated_at = excluded.updated_at"
        )
        params = (
            holder_key,
            _ints(s.categories),
            _ints(s.purposes),
            _ints(terms.refused_purposes),
            _ints(s.media),
            ",".join(sorted(s.territories)),
            terms.currency,
            terms.price_per_day_minor,
            terms.max_term_seconds,
            int(terms.exclusivity_offered),
            terms.exclusivity_multiplier_bps,
            terms.updated_at,
        )

        def change(c: Conn) -> None:
            self._alive(c, holder_key)
            c.execute(sql, params)

        self._transact(change, nonces)

    @staticmethod
    def _terms(r: Sequence[Any]) -> Terms:
        scope = Scope.of(
            [DataCategory(v) for v in _parse_ints(r[0])],
            [Purpose(v) for v in _parse_ints(r[1])],
            [Medium(v) for v in _parse_ints(r[3])],
            r[4].split(","),
        )
        return Terms(
            scope,
            frozenset(Purpose(v) for v in _parse_ints(r[2])),
            r[5],
            r[6],
            r[7],
            bool(r[8]),
            r[9],
            r[10],
        )

    _TERMS = (
        "categories, purposes, refused, media, territories, currency, price_per_day_minor,"
        " max_term_seconds, exclusivity_offered, exclusivity_multiplier_bps, updated_at"
    )

    def terms(self, holder_key: bytes) -> Terms | None:
        """The holder's terms."""
        r = self._row(f"SELECT {self._TERMS} FROM terms WHERE holder_key = ?", (holder_key,))
        return self._terms(r) if r else None

    def offers(self, after_handle: str, limit: int) -> list[tuple[Party, Terms]]:
        """Holders that have terms and do not object, by handle, after ``after_handle``."""
        cols = ", ".join(f"p.{c.strip()}" for c in self._PARTY.split(","))
        tcols = ", ".join(f"t.{c.strip()}" for c in self._TERMS.split(","))
        rows = self._rows(
            f"SELECT {cols}, {tcols} FROM parties p JOIN terms t ON t.holder_key = p.key"
            " WHERE p.objecting = 0 AND p.handle > ? ORDER BY p.handle LIMIT ?",
            (after_handle, limit),
        )
        n = self._PARTY_COLUMNS
        return [(self._party(r[:n]), self._terms(r[n:])) for r in rows]

    # -- standing rules --------------------------------------------------------------------
    _RULE = "rule_id, holder_key, rule, signature, created_at, withdrawn_at"

    def add_rule(self, row: StandingRuleRow, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Register a standing rule; ALREADY_EXISTS for a known rule id."""
        values = (
            row.rule_id,
            row.holder_key,
            row.rule,
            row.signature,
            row.created_at,
            row.withdrawn_at,
        )

        def change(c: Conn) -> None:
            self._alive(c, row.holder_key)
            c.execute(
                f"INSERT INTO standing_rules ({self._RULE}) VALUES (?, ?, ?, ?, ?, ?)", values
            )

        try:
            self._transact(change, nonces)
        except self._INTEGRITY:
            raise LicentiaError(Reason.ALREADY_EXISTS, "rule id already registered") from None

    def rules(self, holder_key: bytes) -> list[StandingRuleRow]:
        """The holder's standing rules, oldest first."""
        rows = self._rows(
            f"SELECT {self._RULE} FROM standing_rules WHERE holder_key = ? ORDER BY rowid",
            (holder_key,),
        )
        return [StandingRuleRow(*r) for r in rows]

    def holder_offer(
        self, holder_key: bytes
    ) -> tuple[Terms | None, list[AssetRow], list[StandingRuleRow]]:
        """The holder's terms, assets and standing rules, as :meth:`terms`, :meth:`assets`
        and :meth:`rules` read them (each statement its own snapshot), sent together where
        the backend can (PostgreSQL: one round trip)."""
        terms, assets, rules = self._reads(
            (
                (f"SELECT {self._TERMS} FROM terms WHERE holder_key = ?", (holder_key,)),
                (
                    f"SELECT {self._ASSET} FROM assets WHERE holder_key = ? ORDER BY seq",
                    (holder_key,),
                ),
                (
                    f"SELECT {self._RULE} FROM standing_rules WHERE holder_key = ? ORDER BY rowid",
                    (holder_key,),
                ),
            )
        )
        return (
            self._terms(terms[0]) if terms else None,
            [self._asset(r) for r in assets],
            [StandingRuleRow(*r) for r in rules],
        )

    def withdraw_rule(
        self, holder_key: bytes, rule_id: bytes, now: int, *, nonces: Sequence[SpentNonce] = ()
    ) -> StandingRuleRow:
        """Withdraw a rule of this holder; NOT_FOUND otherwise."""

        def change(c: Conn) -> StandingRuleRow:
            c.execute(
                "UPDATE standing_rules SET withdrawn_at = ?"
                " WHERE rule_id = ? AND holder_key = ? AND withdrawn_at = 0",
                (now, rule_id, holder_key),
            )
            r = c.execute(
                f"SELECT {self._RULE} FROM standing_rules WHERE rule_id = ? AND holder_key = ?",
                (rule_id, holder_key),
            ).fetchone()
            if r is None:
                raise LicentiaError(Reason.NOT_FOUND, "no such standing rule")
            return StandingRuleRow(*r)

        return self._transact(change, nonces)
