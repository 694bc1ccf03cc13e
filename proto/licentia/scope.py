"""Scope: categories x purposes x media x territories, and the intended use checked against it.

Purposes form a forest after W3C DPV: a licensed purpose covers itself and every narrower
purpose below it, never a broader or a sibling one. Sensitive purposes (political
campaign, AI model training) are roots, so no broader grant can cover them. Territories
cover by set inclusion of their expansions (see :mod:`licentia.territory`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from . import territory
from .errors import LicentiaError, Reason
from .v1 import licence_pb2
from .vocabulary import DataCategory, Medium, Purpose

__all__ = [
    "MAX_SCOPE_ITEMS",
    "PURPOSE_COVERS",
    "PURPOSE_PARENT",
    "IntendedUse",
    "Scope",
    "purpose_covers",
    "unknown_value",
]


#: Each narrower purpose and the broader purpose directly above it.
PURPOSE_PARENT: dict[Purpose, Purpose] = {
    Purpose.ADVERTISING: Purpose.MARKETING,
    Purpose.PERSONALISED_ADVERTISING: Purpose.ADVERTISING,
    Purpose.DIRECT_MARKETING: Purpose.MARKETING,
    Purpose.SOCIAL_MEDIA_MARKETING: Purpose.MARKETING,
    Purpose.PUBLIC_RELATIONS: Purpose.MARKETING,
    Purpose.ACADEMIC_RESEARCH: Purpose.RESEARCH_AND_DEVELOPMENT,
    Purpose.COMMERCIAL_RESEARCH: Purpose.RESEARCH_AND_DEVELOPMENT,
    Purpose.NON_COMMERCIAL_RESEARCH: Purpose.RESEARCH_AND_DEVELOPMENT,
}


def _ancestors_or_self(p: Purpose) -> list[Purpose]:
    out = [p]
    while out[-1] in PURPOSE_PARENT:
        out.append(PURPOSE_PARENT[out[-1]])
    return out


#: Every purpose a licensed purpose covers: itself and all narrower ones.
PURPOSE_COVERS: dict[Purpose, frozenset[Purpose]] = {
    p: frozenset(q for q in Purpose if p in _ancestors_or_self(q)) for p in Purpose
}

#: Caps on what a scope may list (sizes from the wire are always capped).
MAX_SCOPE_ITEMS = 32


def purpose_covers(granted: Purpose, wanted: Purpose) -> bool:
    """True if a licence for ``granted`` allows a use for ``wanted``."""
    return wanted in PURPOSE_COVERS[granted]


_E = TypeVar("_E", DataCategory, Purpose, Medium)
_BY_VALUE: dict[type, dict[int, Any]] = {
    kind: {m.value: m for m in kind} for kind in (DataCategory, Purpose, Medium)
}


def unknown_value(kind: type[enum.IntEnum], what: str, value: object) -> str:
    """The message for an unknown enum value: the field, the allowed values, what came."""
    known = ", ".join(f"{m.value} ({m.name.lower().replace('_', '-')})" for m in kind)
    return f"{what}: one of {known}; got {value}"


def _enum_set(values: Sequence[int], kind: type[_E], what: str) -> frozenset[_E]:
    by_value = _BY_VALUE[kind]
    try:
        out = frozenset([by_value[v] for v in values])
    except KeyError:
        bad = next(v for v in values if v not in by_value)
        raise LicentiaError(Reason.MALFORMED, unknown_value(kind, f"scope.{what}", bad)) from None
    if len(out) != len(values):
        raise LicentiaError(Reason.MALFORMED, f"scope.{what}: each value once; got repeats")
    return out


def _wire(values: frozenset[_E]) -> Any:
    """Enum members in canonical (ascending) order, as the generated stubs accept them."""
    return sorted(values)


#: Parsed scopes by their exact wire bytes: the licences of one offer share one scope, so
#: verifying a new licence does not rebuild it. Bounded; values are immutable.
_INTERNED: dict[bytes, Scope] = {}
_INTERN_MAX = 4096


@dataclass(frozen=True, slots=True)
class Scope:
    """What a licence allows: each intended use must fall within every dimension."""

    categories: frozenset[DataCategory]
    purposes: frozenset[Purpose]
    media: frozenset[Medium]
    territories: frozenset[str]
    #: Every purpose covered (the licensed ones and all narrower ones).
    purpose_closure: frozenset[Purpose] = field(init=False, repr=False, compare=False)
    #: Every country code covered.
    territory_closure: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("categories", "purposes", "media", "territories"):
            items = getattr(self, name)
            if not items:
                raise LicentiaError(Reason.MALFORMED, f"scope.{name}: at least one; got none")
            if len(items) > MAX_SCOPE_ITEMS:
                raise LicentiaError(
                    Reason.TOO_LARGE, f"scope.{name}: at most {MAX_SCOPE_ITEMS}; got {len(items)}"
                )
        for code in self.territories:
            if not territory.is_territory(code):
                raise LicentiaError(
                    Reason.MALFORMED,
                    "scope.territories: ISO 3166-1 alpha-2 codes or groups (EU, EEA, WORLD); "
                    f"got {code[:16]!r}",
                )
        closure: frozenset[Purpose] = frozenset()
        for p in self.purposes:
            closure = closure | PURPOSE_COVERS[p]
        object.__setattr__(self, "purpose_closure", closure)
        object.__setattr__(self, "territory_closure", territory.expand_all(self.territories))

    @classmethod
    def of(
        cls,
        categories: Iterable[DataCategory],
        purposes: Iterable[Purpose],
        media: Iterable[Medium],
        territories: Iterable[str],
    ) -> Scope:
        """Build a scope from any iterables."""
        return cls(
            frozenset(categories), frozenset(purposes), frozenset(media), frozenset(territories)
        )

    def contains(self, other: Scope) -> bool:
        """True if every use ``other`` allows, this scope allows too."""
        return (
            other.categories <= self.categories
            and other.purposes <= self.purpose_closure
            and other.media <= self.media
            and other.territory_closure <= self.territory_closure
        )

    def check(self, use: IntendedUse) -> list[Reason]:
        """The scope reasons ``use`` fails (empty when it is within scope)."""
        category, purpose, medium = use.category, use.purpose, use.medium
        if (
            category in self.categories
            and purpose in self.purpose_closure
            and medium in self.media
            and territory.covers(self.territory_closure, use.territory)
        ):
            return []  # the common case: within every dimension, nothing to collect
        reasons: list[Reason] = []
        if use.category not in self.categories:
            reasons.append(Reason.OUT_OF_SCOPE_CATEGORY)
        if use.purpose not in self.purpose_closure:
            reasons.append(Reason.OUT_OF_SCOPE_PURPOSE)
        if use.medium not in self.media:
            reasons.append(Reason.OUT_OF_SCOPE_MEDIUM)
        if not territory.covers(self.territory_closure, use.territory):
            reasons.append(Reason.OUT_OF_SCOPE_TERRITORY)
        return reasons

    def to_proto(self) -> licence_pb2.Scope:
        """The wire form, every list in canonical (sorted) order."""
        return licence_pb2.Scope(
            categories=_wire(self.categories),
            purposes=_wire(self.purposes),
            media=_wire(self.media),
            territories=sorted(self.territories),
        )

    @classmethod
    def from_proto(cls, msg: licence_pb2.Scope) -> Scope:
        """Parse the wire form; raises ``LicentiaError`` for unknown or duplicate values."""
        key = msg.SerializeToString(deterministic=True)
        scope = _INTERNED.get(key)
        if scope is not None:
            return scope
        for items in (msg.categories, msg.purposes, msg.media, msg.territories):
            if len(items) > MAX_SCOPE_ITEMS:
                raise LicentiaError(
                    Reason.TOO_LARGE, f"scope: at most {MAX_SCOPE_ITEMS} of each; got {len(items)}"
                )
        territories = frozenset(msg.territories)
        if len(territories) != len(msg.territories):
            raise LicentiaError(Reason.MALFORMED, "scope.territories: each value once; got repeats")
        scope = cls(
            _enum_set(msg.categories, DataCategory, "categories"),
            _enum_set(msg.purposes, Purpose, "purposes"),
            _enum_set(msg.media, Medium, "media"),
            territories,
        )
        if len(_INTERNED) >= _INTERN_MAX:
            _INTERNED.clear()
        _INTERNED[key] = scope
        return scope


@dataclass(frozen=True, slots=True)
class IntendedUse:
    """What a platform is about to publish: checked against a licence at time ``now``."""

    category: DataCategory
    purpose: Purpose
    medium: Medium
    territory: str
    asset_sha256: bytes

    def __post_init__(self) -> None:
        for kind, what, value in (
            (DataCategory, "use category", self.category),
            (Purpose, "use purpose", self.purpose),
            (Medium, "use medium", self.medium),
        ):
            if value not in _BY_VALUE[kind]:
                raise LicentiaError(Reason.INVALID_USE, unknown_value(kind, what, value))
        if not territory.is_territory(self.territory):
            raise LicentiaError(
                Reason.INVALID_USE,
                f"use territory: an ISO 3166-1 alpha-2 code or a group (EU, EEA, WORLD); "
                f"got {self.territory[:16]!r}",
            )
        if len(self.asset_sha256) != 32:
            raise LicentiaError(Reason.INVALID_USE, "an asset digest is 32 bytes (SHA-256)")

    def to_proto(self) -> licence_pb2.IntendedUse:
        """The wire form."""
        return licence_pb2.IntendedUse(
            category=cast("Any", self.category),
            purpose=cast("Any", self.purpose),
            medium=cast("Any", self.medium),
            territory=self.territory,
            asset_sha256=self.asset_sha256,
        )

    @classmethod
    def from_proto(cls, msg: licence_pb2.IntendedUse) -> IntendedUse:
        """Parse the wire form; raises ``LicentiaError(INVALID_USE)``.

        Uses are interned by their field values: a platform publishes a few kinds of use
        many times, so a check does not rebuild and re-validate the same use each time.
        """
        key = (msg.category, msg.purpose, msg.medium, msg.territory, msg.asset_sha256)
        use = _USES.get(key)
        if use is not None:
            return use
        for kind, what, value in (
            (DataCategory, "use category", key[0]),
            (Purpose, "use purpose", key[1]),
            (Medium, "use medium", key[2]),
        ):
            if value not in _BY_VALUE[kind]:
                raise LicentiaError(Reason.INVALID_USE, unknown_value(kind, what, value))
        use = cls(DataCategory(key[0]), Purpose(key[1]), Medium(key[2]), key[3], key[4])
        if len(_USES) >= _INTERN_MAX:
            _USES.clear()
        _USES[key] = use
        return use


#: Parsed intended uses by their wire field values (bounded, like ``_INTERNED``).
_USES: dict[tuple[int, int, int, str, bytes], IntendedUse] = {}
