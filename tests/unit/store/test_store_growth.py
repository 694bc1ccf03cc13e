"""The store contract, costs that must not grow with the store (both backends): a statement
settles only the licences that are due, and reads its figures from indexes; the numbers are
the ledger's, whatever the path."""

from __future__ import annotations

from typing import Any

from licentia.services import ledger
from licentia.services.model import LicenceRow, Party
from licentia.services.store import Store

from .harness import DAY, LICENSEE, NOW, PRICE, _d, _holder, _issued

FEE_BPS = 1000  # what the harness's issuances charge


def _money(lic: LicenceRow) -> ledger.LicenceMoney:
    return ledger.LicenceMoney(
        lic.licence_id,
        LICENSEE.public.raw,
        lic.holder_key,
        PRICE,
        0,
        lic.max_uses,
        FEE_BPS,
        lic.not_before,
        lic.not_after,
    )


def _expected(lics: list[LicenceRow], at: int, withdrawn: int) -> tuple[int, int, int]:
    """(available, pending, total) of the holder, from the ledger's own functions."""
    earned = pending = 0
    for lic in lics:
        m = _money(lic)
        if at >= m.not_after:
            settled = ledger.close(m, ledger.Settled(), at)[1]
        else:
            settled = ledger.accrue(m, ledger.Settled(), at)[1]
        earned += ledger.split(settled.time_earned, FEE_BPS)[0]
        pending += ledger.holder_pending(m, settled)
    return earned - withdrawn, pending, earned


def _lines(store: Store, party: Party) -> list[Any]:
    return list(store.statement(party, 0, 500).lines)


def test_a_statement_settles_the_licences_due_and_sums_like_the_ledger(store: Store) -> None:
    holder = _holder()
    h = holder.public.raw
    lics = [_issued(store, holder, i, not_after=NOW + (30 + 40 * i) * DAY) for i in range(3)]
    party = store.party(h)
    assert party is not None
    store.add_payout_destination(h, "iban", NOW, NOW, limit=16)
    withdrawn = 0
    for at in (NOW + DAY, NOW + 20 * DAY, NOW + 31 * DAY, NOW + 80 * DAY, NOW + 200 * DAY):
        store.settle(h, at)
        st = store.statement(party, 0, 500)
        assert (st.available, st.pending, st.total) == _expected(lics, at, withdrawn)
        if st.available > 100:  # a withdrawal lowers what is available, never what she earned
            store.withdraw(h, 100, "iban", b"w%d" % at, at, digest=_d(b"w%d" % at, 100, "iban"))
            withdrawn += 100
            again = store.statement(party, 0, 500)
            assert (again.available, again.total) == (st.available - 100, st.total)
    # Every licence is closed: nothing is due any more, a settlement writes nothing.
    before = _lines(store, party)
    store.settle(h, NOW + 400 * DAY)
    assert _lines(store, party) == before


def test_a_licence_is_settled_from_its_due_time_not_a_second_before(store: Store) -> None:
    holder = _holder()
    h = holder.public.raw
    lic = _issued(store, holder, 1)
    party = store.party(h)
    assert party is not None
    at = NOW + 3 * DAY
    store.settle(h, at)
    settled = ledger.accrue(_money(lic), ledger.Settled(), at)[1]
    due = ledger.next_due(_money(lic), settled)
    assert at < due < lic.not_after
    lines = _lines(store, party)
    store.settle(h, due - 1)  # nothing earned since: nothing written
    assert _lines(store, party) == lines
    store.settle(h, due)  # one minor unit more: one more accrual
    after = _lines(store, party)
    assert len(after) == len(lines) + 1
    assert (after[0].kind, after[0].at) == ("ACCRUAL", due)


def test_rows_from_before_the_due_time_are_settled_once_then_left_alone(store: Store) -> None:
    # A row migrated by m016_growth has due_at 0 ("due now") whatever it has earned.
    holder = _holder()
    h = holder.public.raw
    lic = _issued(store, holder, 1)
    party = store.party(h)
    assert party is not None
    store._execute("UPDATE licence_money SET due_at = 0")  # type: ignore[attr-defined]
    lines = _lines(store, party)
    store.settle(h, lic.not_before)  # nothing earned yet: no posting, but its due time set
    assert _lines(store, party) == lines
    due = store._rows("SELECT due_at FROM licence_money")  # type: ignore[attr-defined]
    assert [int(r[0]) for r in due] == [ledger.next_due(_money(lic), ledger.Settled())]
