"""How every bench finishes its lines, judges them and prints them: the one place for
``of_floor``, for the goals that are shares of a floor, and for a bench's exit code.

A bench builds one dict per figure (``bench``, ``ops_per_s``, ``ratio``, ``target``, ``limit``,
and, where it measures floors, ``floor_ratio``, ``storage_floor_ratio`` or
``checks_floor_ratio``: bench/floors.py), passes each through :func:`line`, and ends with
``return emit(rows)``.

- :func:`line` adds ``of_floor``, the figure as a share of the floor its goal is about:
  ``ratio ÷ floor_ratio`` (or ÷ the floor named by ``basis``, e.g. ``storage_floor_ratio``);
  1.0 is the floor itself, the most any implementation of the same work could reach. For a
  figure where less is better (a latency), it is ``floor ÷ ratio``, so that 1.0 is the floor
  and less is worse there too. The other floors of the line get their own share
  (``of_checks_floor``, ``of_signature_floor`` for ``floor_ratio`` when the goal is about
  another floor). With ``goal``, the line is judged on ``of_floor``: ``target`` becomes the
  goal, ``target_of`` says so, and ``ok`` is ``of_floor >= goal``; ``ratio`` (the absolute
  ratio against the limit) is still printed, unjudged.
- :func:`emit` prints every line as one JSON object and returns the bench's exit code: 0 when
  every line with a target is ``ok``, 1 otherwise. A line without a target is reported and
  never fails (its ``ok`` is true); a line with a target whose ``ok`` is not a bool is a bug
  of the bench and raises (a crash, which fails ``make bench`` too).

A bench with a goal that is not a share of a floor (a latency in ms, a size) sets ``target``
and ``ok`` itself, as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

#: The floors a line may carry, and the name of the share printed for each when it is not the
#: basis of ``of_floor``.
FLOORS = {
    "floor_ratio": "of_signature_floor",
    "storage_floor_ratio": "of_storage_floor",
    "checks_floor_ratio": "of_checks_floor",
}


def share(ratio: float, floor: float, *, lower_is_better: bool = False) -> float:
    """``ratio`` as a share of ``floor`` (1.0: at the floor; less: short of it)."""
    if lower_is_better:
        return floor / ratio if ratio > 0 else 1.0
    return ratio / floor


def line(
    row: dict[str, Any],
    *,
    goal: float | None = None,
    basis: str = "floor_ratio",
    lower_is_better: bool = False,
) -> dict[str, Any]:
    """``row`` with ``of_floor`` (``ratio`` as a share of ``row[basis]``) and the shares of its
    other floors; with ``goal``, judged on ``of_floor`` (``target``, ``target_of``, ``ok``).
    Returns ``row`` (changed in place). A row without ``row[basis]`` is returned unchanged,
    unless ``goal`` is given (then it is an error: a goal needs its floor)."""
    if basis not in FLOORS:
        raise ValueError(f"unknown floor {basis!r}: one of {', '.join(FLOORS)}")
    ratio, floor = row.get("ratio"), row.get(basis)
    if ratio is None or floor is None:
        if goal is not None:
            raise ValueError(f"{row.get('bench')}: a goal of {goal} of {basis}, no {basis}")
        return row
    row["of_floor"] = round(share(ratio, floor, lower_is_better=lower_is_better), 3)
    for key, name in FLOORS.items():
        if key != basis and row.get(key) is not None:
            row[name] = round(share(ratio, row[key], lower_is_better=lower_is_better), 3)
    if goal is not None:
        row["target"] = goal
        row["target_of"] = f"of_floor (ratio ÷ {basis})"
        row["ok"] = row["of_floor"] >= goal
    return row


def emit(rows: Iterable[dict[str, Any]]) -> int:
    """Print each row as one JSON line; 0 if every row with a target is ok, else 1."""
    code = 0
    for row in rows:
        if row.get("target") is None:
            row["ok"] = True  # reported, never judged
        elif not isinstance(row.get("ok"), bool):
            raise ValueError(f"{row.get('bench')}: a target and no ok: {row!r}")
        elif not row["ok"]:
            code = 1
        print(json.dumps(row, ensure_ascii=False), flush=True)
    return code
