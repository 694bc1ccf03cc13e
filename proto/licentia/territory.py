"""Territories: ISO 3166-1 alpha-2 country codes and the named groups EU, EEA and WORLD.

A territory string expands to a set of country codes; groups expand exactly to their
members. A set of licensed territories covers a wanted territory when the wanted one's
expansion is a subset of the union of the licensed ones' expansions.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "EEA",
    "EU",
    "GROUPS",
    "ISO_3166_ALPHA2",
    "covers",
    "expand",
    "expand_all",
    "is_territory",
]


#: Every officially assigned ISO 3166-1 alpha-2 code (249 codes).
ISO_3166_ALPHA2: frozenset[str] = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ
    BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET
    FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
    HK HM HN HR HT HU
    ID IE IL IM IN IO IQ IR IS IT
    JE JM JO JP
    KE KG KH KI KM KN KP KR KW KY KZ
    LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
    NA NC NE NF NG NI NL NO NP NR NU NZ
    OM
    PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA
    RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
    TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ
    UA UG UM US UY UZ
    VA VC VE VG VI VN VU
    WF WS
    YE YT
    ZA ZM ZW
    """.split()  # noqa: SIM905 - a table reads better than 249 list items
)

#: The 27 member states of the European Union (ISO codes; Greece is GR).
EU: frozenset[str] = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)
#: The European Economic Area: the EU plus Iceland, Liechtenstein and Norway.
EEA: frozenset[str] = EU | frozenset({"IS", "LI", "NO"})

#: Named groups and their exact members.
GROUPS: dict[str, frozenset[str]] = {"EU": EU, "EEA": EEA, "WORLD": ISO_3166_ALPHA2}

_EXPANSION: dict[str, frozenset[str]] = {c: frozenset({c}) for c in ISO_3166_ALPHA2} | GROUPS


def is_territory(code: str) -> bool:
    """True if ``code`` is an assigned ISO 3166-1 alpha-2 code or a named group."""
    return code in _EXPANSION


def expand(code: str) -> frozenset[str]:
    """The country codes a territory stands for; raises ``KeyError`` for an unknown code."""
    return _EXPANSION[code]


def expand_all(codes: Iterable[str]) -> frozenset[str]:
    """The union of the expansions of ``codes``; raises ``KeyError`` for an unknown code."""
    out: frozenset[str] = frozenset()
    for code in codes:
        out = out | _EXPANSION[code]
    return out


def covers(granted: frozenset[str], wanted: str) -> bool:
    """True if the expanded ``granted`` set covers every country of ``wanted``.

    ``granted`` must already be expanded (see :func:`expand_all`); an unknown ``wanted``
    code is never covered.
    """
    members = _EXPANSION.get(wanted)
    if members is None:
        return False
    if len(members) == 1:
        return wanted in granted
    return members <= granted
