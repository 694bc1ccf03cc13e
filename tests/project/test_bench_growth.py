"""The growth benchmark runs end to end and prints what it should (figures are not
asserted), and the store it seeds is one the exchange could have written."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from licentia import merkle, status
from licentia.keys import PrivateKey
from licentia.services.model import Party, Role
from licentia.services.store.sqlite import SqliteStore

from .benches import load_bench

FIGURES = ["statement.at_1m", "verify.snapshot.at_1m", "rpc.issue.at_1m"]


def test_bench_growth_quick_compares_a_seeded_store_with_an_empty_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rc = load_bench(monkeypatch, "bench_growth").main(["--quick"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["bench"] for r in rows] == FIGURES
    for r in rows:
        assert {"ratio", "target", "limit", "ok", "empty_ops_per_s", "big_ops_per_s"} <= r.keys()
        assert r["empty_ops_per_s"] > 0
        assert r["big_ops_per_s"] > 0
        assert r["ok"] == (r["ratio"] >= r["target"])
        assert (r["licences"], r["live"], r["seed_cached"]) == (10_000, 1_000, False)
    assert rc == (0 if all(r["ok"] for r in rows) else 1)


def test_a_seeded_store_keeps_the_ledger_the_log_and_the_status_list(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seed: Any = load_bench(monkeypatch, "seed")
    subject = PrivateKey.from_seed(b"\x07" * 32).public.raw
    plan = seed.Plan(
        licences=600,
        live=60,
        holders=5,
        advertisers=3,
        subjects=(subject,),
        subject_live=20,
        subject_closed=20,
    )
    store = SqliteStore(tmp_path / "db")
    try:  # the subject registered first, as the bench's exchange does
        store.add_party(Party(subject, Role.HOLDER, "subject", "Subject", "FR", 0))
        done = seed.seed(store, plan)
        assert (done.licences, done.live) == (600, 60)
        assert 90 < done.revoked < 180  # about 1 ended licence in 4
        assert store.ledger_check() == []
        # The log: every issuance and revocation, its tree the one the entries make.
        entries = [e for _, e, _ in store.log_entries(0, done.log_entries)]
        assert len(entries) == done.log_entries == 600 + done.revoked
        assert store.log_head() == (len(entries), merkle.reference_root(entries))
        lists, revoked, sequence = store.status(0)
        assert len(revoked) == sequence == done.revoked
        # Every seeded slot is in a list the store knows, and none is handed out again.
        assert {lst for lst, _ in revoked} <= {lst for lst, _ in lists}
        with store._snapshot() as c:
            taken = {
                (int(a), int(b))
                for a, b in c.execute("SELECT status_list, status_index FROM licences")
            }
            epoch = c.execute(
                "SELECT epoch FROM status_lists WHERE list_id = ?", (revoked[-1][0],)
            ).fetchone()[0]
        assert store.reserve_status_slot(epoch * status.DEFAULT_EPOCH_SECONDS + 1) not in taken
        # The subject's statement: her 20 live licences pending, her 20 ended ones paid.
        now = int(time.time())
        store.settle(subject, now)
        party = store.party(subject)
        assert party is not None
        st = store.statement(party, 0, 100)
        assert st.pending > 0
        assert st.total == st.available > 0
    finally:
        store.close()
