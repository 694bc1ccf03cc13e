"""How the wallet finds the id a person typed among hers (``session._pick``), with the
exchange's ids, which begin with the second they were made (docs/token-format.md §3.1)."""

from __future__ import annotations

import pytest

from licentia.clients.wallet.session import OperationFailedError, _pick
from licentia.token import time_ordered_id

NOW = 1_800_000_000


def test_a_prefix_naming_ids_of_one_second_is_refused_and_a_longer_one_names_one() -> None:
    a, b = time_ordered_id(NOW), time_ordered_id(NOW)
    later = time_ordered_id(NOW + 1)
    ids = [a, b, later]
    shared = a.hex()[:8]
    assert b.hex().startswith(shared)
    assert not later.hex().startswith(shared)
    with pytest.raises(OperationFailedError) as e:
        _pick(ids, shared, "licence")
    text = str(e.value)
    assert f"'{shared}' begins 2 ids" in text
    assert a.hex()[:16] in text
    assert b.hex()[:16] in text
    assert later.hex()[:16] not in text
    assert "type more of the licence's id" in text
    assert _pick(ids, a.hex()[:16], "licence") == a  # 4 random bytes past the second
    assert _pick(ids, b.hex().upper(), "licence") == b
    assert _pick(ids, later.hex()[:8], "licence") == later


def test_short_or_unknown_prefixes_name_nothing() -> None:
    ids = [time_ordered_id(NOW)]
    for text in (ids[0].hex()[:5], "ffffffff", ""):
        with pytest.raises(OperationFailedError) as e:
            _pick(ids, text, "licence")
        assert "no single licence" in str(e.value)


def test_many_ids_of_one_second_are_shown_five_and_counted() -> None:
    ids = [time_ordered_id(NOW) for _ in range(8)]
    with pytest.raises(OperationFailedError) as e:
        _pick(ids, ids[0].hex()[:8], "pending request")
    text = str(e.value)
    assert "begins 8 ids" in text
    assert "and 3 more" in text
    assert sum(i.hex()[:16] in text for i in ids) == 5
