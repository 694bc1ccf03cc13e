"""Data categories, purposes (after W3C DPV) and media, as Python enums.

Values mirror ``licentia/v1/vocabulary.proto`` (tested to stay in sync). The purpose
hierarchy lives in :mod:`licentia.scope`.
"""

from __future__ import annotations

import enum

__all__ = ["SENSITIVE_CATEGORIES", "SENSITIVE_PURPOSES", "DataCategory", "Medium", "Purpose"]


class DataCategory(enum.IntEnum):
    """A category of personal data that a holder can license."""

    NAME = 1
    IMAGE = 2
    VOICE = 3
    OPINIONS = 4
    BIOGRAPHY = 5
    HOMETOWN = 6
    EMPLOYMENT_HISTORY = 7


class Purpose(enum.IntEnum):
    """The purpose of a use, named after W3C DPV terms."""

    MARKETING = 1
    ADVERTISING = 2
    PERSONALISED_ADVERTISING = 3
    DIRECT_MARKETING = 4
    SOCIAL_MEDIA_MARKETING = 5
    PUBLIC_RELATIONS = 6
    RECRUITMENT = 7
    POLITICAL_CAMPAIGN = 8
    AI_MODEL_TRAINING = 9
    RESEARCH_AND_DEVELOPMENT = 10
    ACADEMIC_RESEARCH = 11
    COMMERCIAL_RESEARCH = 12
    NON_COMMERCIAL_RESEARCH = 13


class Medium(enum.IntEnum):
    """Where the data is published. Media are flat: none covers another."""

    ONLINE = 1
    SOCIAL = 2
    PRINT = 3
    TV = 4
    RADIO = 5
    OUT_OF_HOME = 6
    IN_APP = 7
    EMAIL = 8
    PODCAST = 9
    CINEMA = 10


#: Purposes that are never auto-approved by a standing rule.
SENSITIVE_PURPOSES: frozenset[Purpose] = frozenset(
    {Purpose.POLITICAL_CAMPAIGN, Purpose.AI_MODEL_TRAINING}
)
#: Categories that are never auto-approved by a standing rule.
SENSITIVE_CATEGORIES: frozenset[DataCategory] = frozenset({DataCategory.OPINIONS})
