"""Licence and request ids."""

from __future__ import annotations

from licentia.services import ids


def test_new_ids_are_random_and_sort_by_when_they_were_made() -> None:
    made = [ids.new_id(at_ms=1_700_000_000_000 + t // 3) for t in range(300)]
    assert all(len(i) == 16 for i in made)
    assert len(set(made)) == 300  # three in each millisecond, unique by their random part
    assert sorted(made, key=lambda i: i[: ids.ID_TIME_BYTES]) == made
    assert made[0][: ids.ID_TIME_BYTES] == (1_700_000_000_000).to_bytes(6, "big")
    assert len({i[ids.ID_TIME_BYTES :] for i in made}) == 300  # 80 random bits each
    now = ids.new_id()
    assert now[: ids.ID_TIME_BYTES] > made[-1][: ids.ID_TIME_BYTES]  # made later
    assert len(ids.new_id(20)) == 20
