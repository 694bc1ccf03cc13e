"""Where parties, requests and licences stand at the exchange, as Python enums.

The one Python definition of each: the exchange (``licentia.services``) and the SDKs
(``licentia.clients``) both use these, and neither copies them. Each member takes its number
from the generated module (``records_pb2``, ``licences_pb2``) and is named like the proto
value without its prefix; a test checks that every proto value has its member.
"""

from __future__ import annotations

import enum

from licentia.v1 import licences_pb2, records_pb2

__all__ = ["LicenceState", "PartyRole", "RequestState", "TerminationCause"]


class PartyRole(enum.IntEnum):
    """What a registered key is (``licentia.v1.PartyRole``)."""

    HOLDER = records_pb2.PARTY_ROLE_HOLDER
    ADVERTISER = records_pb2.PARTY_ROLE_ADVERTISER
    PLATFORM = records_pb2.PARTY_ROLE_PLATFORM


class RequestState(enum.IntEnum):
    """Where a licence request stands (``licentia.v1.RequestState``)."""

    PENDING = records_pb2.REQUEST_STATE_PENDING
    ISSUED = records_pb2.REQUEST_STATE_ISSUED
    DECLINED = records_pb2.REQUEST_STATE_DECLINED
    EXPIRED = records_pb2.REQUEST_STATE_EXPIRED
    FAILED = records_pb2.REQUEST_STATE_FAILED
    WITHDRAWN = records_pb2.REQUEST_STATE_WITHDRAWN


class LicenceState(enum.IntEnum):
    """Where a licence stands at the exchange (``licentia.v1.LicenceState``)."""

    ACTIVE = records_pb2.LICENCE_STATE_ACTIVE
    EXPIRED = records_pb2.LICENCE_STATE_EXPIRED
    REVOKED = records_pb2.LICENCE_STATE_REVOKED


class TerminationCause(enum.IntEnum):
    """Why a licence ended early (``licentia.v1.TerminationCause``)."""

    REVOKED = licences_pb2.TERMINATION_CAUSE_REVOKED
    ERASED = licences_pb2.TERMINATION_CAUSE_ERASED
    LICENSEE_KEY_COMPROMISED = licences_pb2.TERMINATION_CAUSE_LICENSEE_KEY_COMPROMISED
