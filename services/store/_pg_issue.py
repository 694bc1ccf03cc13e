"""An automatic issuance on PostgreSQL in two server-side calls (part of
:class:`.postgres.PostgresStore`; the functions are migration ``m018_pg_issue2``'s).

``RequestLicence`` covered by a standing rule stores its request and issues its licence in
one change (:meth:`.RequestsPart.add_request`). Sent as separate statements that change is
~28 of them on the batch's connection, and psycopg is Python around every one (the batch's
leader, whose thread is the exchange's ceiling, spent most of its time there). Here its
expected path is two calls of plpgsql functions whose source is the migration's:

- :data:`ISSUE_OPEN` (``licentia_issue_open``): the holder's lock and erasure check, the
  advertiser's account lock, whether one of the advertiser's reserving requests is due to
  expire, the holder's live licences compared with those the verdict was decided over, the
  escrow's debit made only if the available funds (balance less what other pending
  requests reserve) cover both the request's cost and the escrow, then the posting's row,
  the holder's pending total, the log's counter with the sibling hashes its index needs
  and the holder's log entry number: the locks, in the order the statements took them.
  Its answer is the one round trip of the issuance (the index must reach Python, which
  signs the licence with it). Every check comes before the first write: when one fails,
  the function changes nothing and answers so.
- :data:`ISSUE_CLOSE` (``licentia_issue_close``): the licence, its money and assets, the
  request stored once, ISSUED (it was stored PENDING and then updated), the posting's
  entries and the escrow's credit, the log entry and the nodes it completes; nothing to
  read back.

Only the expected path is in the functions. When ``licentia_issue_open`` answers that a
check failed (the holder erased, a request due to expire, funds short, the live licences
changed), or the issuance is one the functions do not make (refused by its verdict, a
pairwise key to record), the change runs as before, as separate statements, under the locks
already held and with nothing changed: every refusal, its reason and its message are the
shared code's (:mod:`._requests`), and so is every change other than this one.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from licentia import merkle, sealed
from licentia.v1 import transparency_pb2

from .. import ledger
from ..issuance import Issuance, Verdict
from ..model import LicenceRow, RequestRow, RequestState
from ._log import SqlNodes
from ._requests import RequestsPart
from ._sql import Conn
from .base import SpentNonce
from .base_erasure import erased_key_digest


def lock_key(parts: Sequence[bytes]) -> int:
    """A signed 64-bit advisory-lock key for ``parts`` (a collision only makes two unrelated
    writers wait for each other)."""
    digest = hashlib.blake2b(b"\x00".join(parts), digest_size=8, person=b"licentia-lock").digest()
    return int.from_bytes(digest, "big", signed=True)


#: Migration ``m018_pg_issue2``: the two functions of an automatic issuance.
MIGRATION = """
CREATE FUNCTION licentia_issue_open(
    p_holder_lock BIGINT, p_erased BYTEA, p_account_lock BIGINT, p_advertiser BYTEA,
    p_cost BIGINT, p_pending INTEGER, p_now BIGINT,
    p_holder BYTEA, p_not_before BIGINT, p_not_after BIGINT, p_exclusive BOOLEAN,
    p_seen BYTEA[],
    p_escrow BOOLEAN, p_debit BIGINT, p_kind TEXT,
    p_posting_kind TEXT, p_licence BYTEA, p_at BIGINT,
    p_pending_holder BYTEA, p_pending_delta BIGINT, p_log_account BYTEA, p_new_log_key BYTEA,
    p_nonces BYTEA[], p_nonces_expire BIGINT[], p_nonces_now BIGINT[],
    OUT o_ok BOOLEAN, OUT o_posting BIGINT, OUT o_index BIGINT, OUT o_levels INTEGER[],
    OUT o_hashes BYTEA[], OUT o_log_key BYTEA, OUT o_entry BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    live BYTEA[];
    available BIGINT;
    spent INTEGER;
BEGIN
    o_ok := false;
    -- The call's nonces first, as every change records them; a replay raises (the batch
    -- is run again, each change in its savepoint, where it is refused as such). A check
    -- below that fails deletes them again: an expired nonce and none are the same.
    FOR i IN 1 .. coalesce(array_length(p_nonces, 1), 0) LOOP
        INSERT INTO spent_nonces VALUES (p_nonces[i], p_nonces_expire[i])
            ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
            WHERE spent_nonces.expires_at <= p_nonces_now[i];
        GET DIAGNOSTICS spent = ROW_COUNT;
        IF spent <> 1 THEN
            RAISE EXCEPTION 'a nonce of this call is spent' USING ERRCODE = 'LC001';
        END IF;
    END LOOP;
    -- The holder's lock (its deletion holds it), then whether she was deleted.
    PERFORM pg_advisory_xact_lock(p_holder_lock);
    IF EXISTS (SELECT 1 FROM erased_keys WHERE digest = p_erased) THEN
        DELETE FROM spent_nonces WHERE key = ANY (p_nonces);
        RETURN;
    END IF;
    -- The advertiser's account lock (one issuance at a time takes its money); a request
    -- of the advertiser due to expire is expired by the statements' path first.
    IF p_cost > 0 THEN
        PERFORM pg_advisory_xact_lock(p_account_lock);
        IF EXISTS (SELECT 1 FROM request_reserves x JOIN requests q
                ON q.request_id = x.request_id WHERE x.advertiser_key = p_advertiser
                AND q.state = p_pending AND q.expires_at <= p_now) THEN
            DELETE FROM spent_nonces WHERE key = ANY (p_nonces);
            RETURN;
        END IF;
    END IF;
    -- The live licences the verdict was decided over (sorted ids), or it is stale.
    IF p_exclusive THEN
        SELECT coalesce(array_agg(licence_id ORDER BY licence_id), '{}') INTO live
            FROM licences WHERE holder_key = p_holder AND revoked_at = 0
            AND not_after > p_not_before AND not_before < p_not_after;
    ELSE
        SELECT coalesce(array_agg(licence_id ORDER BY licence_id), '{}') INTO live
            FROM licences WHERE holder_key = p_holder AND revoked_at = 0
            AND not_after > p_not_before AND not_before < p_not_after AND exclusive = 1;
    END IF;
    IF live IS DISTINCT FROM p_seen THEN
        DELETE FROM spent_nonces WHERE key = ANY (p_nonces);
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(p_account_lock);
    -- The escrow's debit, made only if the funds available cover it and the request's
    -- cost: the first write, so that every refusal above changed nothing.
    IF p_escrow THEN
        UPDATE balances SET balance = balance - p_debit
            WHERE account_kind = p_kind AND account_key = p_advertiser
            AND balance - coalesce((SELECT reserved FROM reserves
                WHERE advertiser_key = p_advertiser), 0) >= greatest(p_debit, p_cost);
        IF NOT FOUND THEN
            DELETE FROM spent_nonces WHERE key = ANY (p_nonces);
            RETURN;
        END IF;
        INSERT INTO postings (kind, licence_id, at, idempotency, reference)
            VALUES (p_posting_kind, p_licence, p_at, NULL, '') RETURNING id INTO o_posting;
    ELSIF p_cost > 0 THEN
        SELECT coalesce((SELECT balance FROM balances WHERE account_kind = p_kind
                AND account_key = p_advertiser), 0)
            - coalesce((SELECT reserved FROM reserves WHERE advertiser_key = p_advertiser), 0)
            INTO available;
        IF available < p_cost THEN
            DELETE FROM spent_nonces WHERE key = ANY (p_nonces);
            RETURN;
        END IF;
    END IF;
    IF p_pending_delta <> 0 THEN
        INSERT INTO holder_pending (holder_key, pending)
            VALUES (p_pending_holder, p_pending_delta)
            ON CONFLICT (holder_key) DO UPDATE
            SET pending = holder_pending.pending + excluded.pending;
    END IF;
    -- The log's place (its counter row held to the commit) and the nodes it needs.
    UPDATE counters SET value = value + 1 WHERE name = 'log_index'
        RETURNING value - 1 INTO o_index;
    SELECT array_agg(s.l ORDER BY s.l), array_agg(n.hash ORDER BY s.l)
        INTO o_levels, o_hashes
        FROM generate_series(0, 61) AS s(l) JOIN log_nodes n
            ON n.level = s.l AND n.idx = (o_index >> s.l) - 1
        WHERE mod(o_index + 1, 1::bigint << (s.l + 1)) = 0;
    -- The holder's log entry number (her log key drawn at her first entry).
    UPDATE account_logs SET entries = entries + 1 WHERE account = p_log_account
        RETURNING log_key, entries INTO o_log_key, o_entry;
    IF NOT FOUND THEN
        INSERT INTO account_logs (account, log_key, entries)
            VALUES (p_log_account, p_new_log_key, 0) ON CONFLICT (account) DO NOTHING;
        UPDATE account_logs SET entries = entries + 1 WHERE account = p_log_account
            RETURNING log_key, entries INTO o_log_key, o_entry;
    END IF;
    o_ok := true;
END $$;

CREATE FUNCTION licentia_issue_close(
    l_id BYTEA, l_request BYTEA, l_token TEXT, l_holder BYTEA, l_licensee BYTEA,
    l_issued BIGINT, l_not_before BIGINT, l_not_after BIGINT, l_status_index BIGINT,
    l_max_uses BIGINT, l_uses BIGINT, l_exclusive INTEGER, l_revoked BIGINT,
    l_consent BYTEA, l_device BYTEA, l_digests BYTEA, l_consent_device BYTEA,
    l_status_list BIGINT,
    m_advertiser BYTEA, m_holder BYTEA, m_price BIGINT, m_per_use BIGINT, m_max_uses BIGINT,
    m_fee_bps BIGINT, m_not_before BIGINT, m_not_after BIGINT, m_earned BIGINT,
    m_charged BIGINT, m_closed INTEGER, m_due BIGINT,
    a_digests BYTEA[],
    r_state INTEGER, r_advertiser BYTEA, r_holder BYTEA, r_claims BYTEA, r_created BIGINT,
    r_expires BIGINT, r_updated BIGINT, r_reason TEXT, r_failure TEXT, r_auto INTEGER,
    r_message TEXT,
    e_posting BIGINT, e_kinds TEXT[], e_keys BYTEA[], e_amounts BIGINT[],
    e_debited_kind TEXT, e_debited_key BYTEA,
    g_index BIGINT, g_entry BYTEA, g_at BIGINT,
    n_levels INTEGER[], n_idxs BIGINT[], n_hashes BYTEA[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO licences (licence_id, request_id, token, holder_key, licensee_key, issued_at,
        not_before, not_after, status_index, max_uses, uses, exclusive, revoked_at,
        consent_key, licensee_device, asset_digests, consent_device, status_list)
        VALUES (l_id, l_request, l_token, l_holder, l_licensee, l_issued, l_not_before,
        l_not_after, l_status_index, l_max_uses, l_uses, l_exclusive, l_revoked, l_consent,
        l_device, l_digests, l_consent_device, l_status_list);
    INSERT INTO licence_money (licence_id, advertiser_key, holder_key, price, price_per_use,
        max_uses, fee_bps, not_before, not_after, time_earned, uses_charged, closed, due_at)
        VALUES (l_id, m_advertiser, m_holder, m_price, m_per_use, m_max_uses, m_fee_bps,
        m_not_before, m_not_after, m_earned, m_charged, m_closed, m_due);
    INSERT INTO licence_assets SELECT l_id, l_holder, d FROM unnest(a_digests) AS d;
    INSERT INTO requests (request_id, state, advertiser_key, holder_key, claims, created_at,
        expires_at, updated_at, reason, failure, auto_approved, message, licence_id)
        VALUES (l_request, r_state, r_advertiser, r_holder, r_claims, r_created, r_expires,
        r_updated, r_reason, r_failure, r_auto, r_message, l_id);
    IF e_posting IS NOT NULL THEN
        INSERT INTO entries SELECT e_posting, k, a, m
            FROM unnest(e_kinds, e_keys, e_amounts) AS t(k, a, m);
        FOR i IN 1 .. coalesce(array_length(e_kinds, 1), 0) LOOP
            IF e_amounts[i] > 0 THEN
                INSERT INTO balances VALUES (e_kinds[i], e_keys[i], e_amounts[i])
                    ON CONFLICT (account_kind, account_key)
                    DO UPDATE SET balance = balances.balance + excluded.balance;
            ELSIF e_kinds[i] <> e_debited_kind OR e_keys[i] <> e_debited_key THEN
                PERFORM licentia_debit(e_amounts[i], e_kinds[i], e_keys[i]);
            END IF;
        END LOOP;
    END IF;
    INSERT INTO log_entries VALUES (g_index, g_entry, g_at, 'licence', l_id);
    INSERT INTO log_nodes SELECT * FROM unnest(n_levels, n_idxs, n_hashes);
END $$;
"""

#: The first call: its one row is ``(ok, posting id, log index, sibling levels, their
#: hashes, the holder's log key, her entry number)``.
ISSUE_OPEN = (
    "SELECT * FROM licentia_issue_open(?::bigint, ?::bytea, ?::bigint, ?::bytea, ?::bigint,"
    " ?::integer, ?::bigint, ?::bytea, ?::bigint, ?::bigint, ?::boolean, ?::bytea[],"
    " ?::boolean, ?::bigint, ?::text, ?::text, ?::bytea, ?::bigint, ?::bytea, ?::bigint,"
    " ?::bytea,"
    " ?::bytea, ?::bytea[], ?::bigint[], ?::bigint[])"
)
#: The second call's parameters, in order, by type. Its whole numbers travel in one array
#: (:func:`close_params`): psycopg re-parses, at every call, a statement of more than 50
#: parameters (it caches the parsing of smaller ones only), which cost the batch's leader
#: ~0.1 ms an issuance.
_CLOSE_TYPES = (
    *("bytea", "bytea", "text", "bytea", "bytea"),
    *("bigint",) * 6,
    *("integer", "bigint", "bytea", "bytea", "bytea", "bytea", "bigint"),
    *("bytea", "bytea"),
    *("bigint",) * 8,
    *("integer", "bigint", "bytea[]"),
    *("integer", "bytea", "bytea", "bytea", "bigint", "bigint", "bigint"),
    *("text", "text", "integer", "text"),
    *("bigint", "text[]", "bytea[]", "bigint[]", "text", "bytea"),
    *("bigint", "bytea", "bigint"),
    *("integer[]", "bigint[]", "bytea[]"),
)
#: Which of the second call's parameters are whole numbers (drawn from its one array).
_CLOSE_NUMBERS = tuple(t in ("bigint", "integer") for t in _CLOSE_TYPES)


def _close_sql() -> str:
    args: list[str] = []
    k = 0
    for t, number in zip(_CLOSE_TYPES, _CLOSE_NUMBERS, strict=True):
        if number:
            k += 1
            args.append(f"v.n[{k}]" if t == "bigint" else f"v.n[{k}]::{t}")
        else:
            args.append(f"?::{t}")
    return f"SELECT licentia_issue_close({', '.join(args)}) FROM (SELECT ?::bigint[] AS n) AS v"


#: The second call (the licence, its money, its assets, the request, the posting's entries,
#: the log entry, the nodes it completes): nothing to read back. Its parameters are
#: :func:`close_params`'s.
ISSUE_CLOSE = _close_sql()


def close_params(values: Sequence[object]) -> tuple[object, ...]:
    """The second call's parameters for ``values`` (one per :data:`_CLOSE_TYPES`): those
    that are not whole numbers, then the list of those that are."""
    if len(values) != len(_CLOSE_TYPES):
        raise ValueError("the second call takes one value per parameter")
    numbers = [v for v, n in zip(values, _CLOSE_NUMBERS, strict=True) if n]
    return (*(v for v, n in zip(values, _CLOSE_NUMBERS, strict=True) if not n), numbers)


class NotMade(Exception):  # noqa: N818 (a signal, not an error)
    """The two calls did not make the issuance (a check failed, or the batch was run again
    change by change): nothing of it was changed, and the statements' path makes it."""


class PgIssuePart(RequestsPart):
    """:meth:`add_request`'s automatic issuance in two calls, for
    :class:`.postgres.PostgresStore`."""

    #: The log's stored nodes known in the batch under way (its leader's; reset with each).
    _batch_nodes: dict[tuple[int, int], bytes]

    #: Per thread: ``issued``, the licence the thread's last :meth:`add_request` made in
    #: two calls, as stored (:meth:`issued_licence`), or None.
    _local: threading.local

    def _bare(
        self,
        fn: Callable[[Conn], Callable[[], tuple[RequestRow, LicenceRow]]],
        nonces: Sequence[SpentNonce],
    ) -> tuple[RequestRow, LicenceRow]:
        """Run ``fn`` in this replica's next batch without a savepoint of its own (the
        backend's): it sends, and what it returns then makes its change or raises
        :class:`NotMade`, having changed nothing."""
        raise NotImplementedError

    def add_request(
        self,
        row: RequestRow,
        *,
        auto: tuple[Issuance, Verdict] | None = None,
        now: int = 0,
        idempotency_key: bytes = b"",
        digest: bytes = b"",
        nonces: Sequence[SpentNonce] = (),
        cost: int = 0,
    ) -> RequestRow:
        """:meth:`.RequestsPart.add_request`; an automatic issuance without an idempotency
        key, that its verdict allows and that records no pairwise key, in two calls
        (:meth:`_issue_at_once`), else — or when those did not make it — as statements."""
        self._local.issued = None
        if auto is not None and not idempotency_key:
            issuance, verdict = auto
            if verdict.refusal is None and not issuance.licence.consent_device:
                spends = tuple(n for n in nonces if not n.recorded)
                try:
                    made, self._local.issued = self._bare(
                        self._issue_at_once(row, issuance, verdict, now, cost, spends), spends
                    )
                    return made
                except NotMade:
                    pass
        return super().add_request(
            row,
            auto=auto,
            now=now,
            idempotency_key=idempotency_key,
            digest=digest,
            nonces=nonces,
            cost=cost,
        )

    def issued_licence(self, row: RequestRow) -> LicenceRow | None:
        """:meth:`.base.RequestsStore.issued_licence`: the licence the two calls of this
        thread's last :meth:`add_request` stored (no read), else read."""
        issued: LicenceRow | None = getattr(self._local, "issued", None)
        self._local.issued = None
        if issued is not None and row.licence_id and issued.licence_id == row.licence_id:
            return issued
        return super().issued_licence(row)

    def _issue_at_once(
        self,
        row: RequestRow,
        issuance: Issuance,
        verdict: Verdict,
        now: int,
        cost: int,
        nonces: Sequence[SpentNonce],
    ) -> Callable[[Conn], Callable[[], tuple[RequestRow, LicenceRow]]]:
        """The issuance as a bare change (:meth:`_bare`), its values made here, in the
        caller's thread, not the batch's: given the batch's connection it sends the first
        call (record ``nonces``, the checks, the locks, the log's place); what that returns,
        called once the call may be answered, stores ``row`` ISSUED with its licence in the
        second — or raises :class:`NotMade`, nothing changed (locks aside, which the
        statements' path takes again in the same order), when a check failed. A batch sends
        the first calls of its issuances one after another and reads their answers together
        (:meth:`.postgres.PostgresStore._try_batch`)."""
        licence, money, escrow = issuance.licence, issuance.money, issuance.escrow
        account = ledger.Account.advertiser(money.advertiser_key)
        debit = -sum(e.amount for e in escrow.entries if e.account == account) if escrow else 0
        first = (
            lock_key((b"holder", row.holder_key)),
            erased_key_digest(row.holder_key),
            lock_key((b"account", ledger.ADVERTISER.encode(), money.advertiser_key)),
            money.advertiser_key,
            cost,
            int(RequestState.PENDING),
            now,
            licence.holder_key,
            licence.not_before,
            licence.not_after,
            licence.exclusive,
            sorted(verdict.seen),
            escrow is not None,
            debit,
            account.kind,
            escrow.kind.value if escrow else "",
            escrow.licence_id if escrow else b"",
            escrow.at if escrow else 0,
            money.holder_key,
            ledger.holder_pending(money, ledger.Settled()),
            licence.holder_key,
            secrets.token_bytes(sealed.LOG_KEY_BYTES),
            [n.key for n in nonces],
            [n.expires_at for n in nonces],
            [n.now for n in nonces],
        )
        entries = escrow.entries if escrow else ()
        # The second call's values but the licence's (signed with the log's index), the
        # posting's id and the log entry's: its money, assets, request and entries.
        middle = (
            *self._money_values(money, ledger.Settled())[1:],
            list(issuance.asset_digests),
            int(RequestState.ISSUED),
            row.advertiser_key,
            row.holder_key,
            row.claims,
            row.created_at,
            row.expires_at,
            now,
            "",
            "",
            int(row.auto_approved),
            row.message,
        )
        ledger_values = (
            [e.account.kind for e in entries],
            [e.account.key for e in entries],
            [e.amount for e in entries],
            account.kind,
            account.key,
        )
        made = replace(row, state=RequestState.ISSUED, updated_at=now, reason="", failure="")

        def send(c: Conn) -> Callable[[], tuple[RequestRow, LicenceRow]]:
            opened = c.execute(ISSUE_OPEN, first)

            def finish() -> tuple[RequestRow, LicenceRow]:
                ok, posting, index, levels, hashes, log_key, number = opened.fetchone()
                if not ok:
                    raise NotMade
                index = int(index)
                signed = issuance.sign(index, max(now, issuance.claims.issued_at))
                data = self._entry_made(c, index, levels, hashes, log_key, number, signed.token)
                c.execute(
                    ISSUE_CLOSE,
                    close_params(
                        (
                            *self._licence_values(signed),
                            *middle,
                            posting,
                            *ledger_values,
                            index,
                            data[0],
                            now,
                            *data[1],
                        )
                    ),
                )
                # The licence as its row reads back (the same conversions).
                stored = self._licence(self._licence_values(signed))
                return replace(made, licence_id=signed.licence_id), stored

            return finish

        return send

    def _entry_made(
        self,
        c: Conn,
        index: int,
        levels: Sequence[int] | None,
        hashes: Sequence[bytes] | None,
        log_key: bytes,
        number: int,
        token: str,
    ) -> tuple[bytes, tuple[list[int], list[int], list[bytes]]]:
        """The licence's log entry, sealed to its holder (her ``log_key``, entry ``number``),
        at ``index``; and the nodes it completes (levels, indexes, hashes)."""
        entry = sealed.seal(bytes(log_key), int(number), transparency_pb2.LogEntry(licence=token))
        data = entry.SerializeToString(deterministic=True)
        # The stored nodes it needs: read with its index, or completed by an entry of this
        # batch whose second call the first call of this one ran before.
        known = self._batch_nodes
        known.update(
            ((int(level), (index >> int(level)) - 1), bytes(h))
            for level, h in zip(levels or (), hashes or (), strict=True)
        )
        nodes = merkle.completed_nodes(index, merkle.leaf_hash(data), SqlNodes(c, known))
        known.update(((level, i), h) for level, i, h in nodes)
        return data, ([n[0] for n in nodes], [n[1] for n in nodes], [n[2] for n in nodes])
