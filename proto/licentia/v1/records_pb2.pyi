from licentia.v1 import licence_pb2 as _licence_pb2
from licentia.v1 import vocabulary_pb2 as _vocabulary_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PartyRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTY_ROLE_UNSPECIFIED: _ClassVar[PartyRole]
    PARTY_ROLE_HOLDER: _ClassVar[PartyRole]
    PARTY_ROLE_ADVERTISER: _ClassVar[PartyRole]
    PARTY_ROLE_PLATFORM: _ClassVar[PartyRole]

class RequestState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_STATE_UNSPECIFIED: _ClassVar[RequestState]
    REQUEST_STATE_PENDING: _ClassVar[RequestState]
    REQUEST_STATE_ISSUED: _ClassVar[RequestState]
    REQUEST_STATE_DECLINED: _ClassVar[RequestState]
    REQUEST_STATE_EXPIRED: _ClassVar[RequestState]
    REQUEST_STATE_FAILED: _ClassVar[RequestState]
    REQUEST_STATE_WITHDRAWN: _ClassVar[RequestState]

class LicenceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LICENCE_STATE_UNSPECIFIED: _ClassVar[LicenceState]
    LICENCE_STATE_ACTIVE: _ClassVar[LicenceState]
    LICENCE_STATE_EXPIRED: _ClassVar[LicenceState]
    LICENCE_STATE_REVOKED: _ClassVar[LicenceState]

class NoticeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTICE_KIND_UNSPECIFIED: _ClassVar[NoticeKind]
    NOTICE_KIND_PAYOUT_DESTINATION_ADDED: _ClassVar[NoticeKind]
PARTY_ROLE_UNSPECIFIED: PartyRole
PARTY_ROLE_HOLDER: PartyRole
PARTY_ROLE_ADVERTISER: PartyRole
PARTY_ROLE_PLATFORM: PartyRole
REQUEST_STATE_UNSPECIFIED: RequestState
REQUEST_STATE_PENDING: RequestState
REQUEST_STATE_ISSUED: RequestState
REQUEST_STATE_DECLINED: RequestState
REQUEST_STATE_EXPIRED: RequestState
REQUEST_STATE_FAILED: RequestState
REQUEST_STATE_WITHDRAWN: RequestState
LICENCE_STATE_UNSPECIFIED: LicenceState
LICENCE_STATE_ACTIVE: LicenceState
LICENCE_STATE_EXPIRED: LicenceState
LICENCE_STATE_REVOKED: LicenceState
NOTICE_KIND_UNSPECIFIED: NoticeKind
NOTICE_KIND_PAYOUT_DESTINATION_ADDED: NoticeKind

class Profile(_message.Message):
    __slots__ = ("key", "role", "handle", "display_name", "country", "registered_at", "objecting", "show_display_name")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    OBJECTING_FIELD_NUMBER: _ClassVar[int]
    SHOW_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    role: PartyRole
    handle: str
    display_name: str
    country: str
    registered_at: int
    objecting: bool
    show_display_name: bool
    def __init__(self, key: _Optional[bytes] = ..., role: _Optional[_Union[PartyRole, str]] = ..., handle: _Optional[str] = ..., display_name: _Optional[str] = ..., country: _Optional[str] = ..., registered_at: _Optional[int] = ..., objecting: _Optional[bool] = ..., show_display_name: _Optional[bool] = ...) -> None: ...

class AssetRecord(_message.Message):
    __slots__ = ("category", "sha256", "label", "has_content", "content_size", "declared_at")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    HAS_CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SIZE_FIELD_NUMBER: _ClassVar[int]
    DECLARED_AT_FIELD_NUMBER: _ClassVar[int]
    category: _vocabulary_pb2.DataCategory
    sha256: bytes
    label: str
    has_content: bool
    content_size: int
    declared_at: int
    def __init__(self, category: _Optional[_Union[_vocabulary_pb2.DataCategory, str]] = ..., sha256: _Optional[bytes] = ..., label: _Optional[str] = ..., has_content: _Optional[bool] = ..., content_size: _Optional[int] = ..., declared_at: _Optional[int] = ...) -> None: ...

class Terms(_message.Message):
    __slots__ = ("categories", "allowed_purposes", "refused_purposes", "media", "territories", "currency", "price_per_day_minor", "max_term_seconds", "exclusivity_offered", "exclusivity_multiplier_bps", "updated_at")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PURPOSES_FIELD_NUMBER: _ClassVar[int]
    REFUSED_PURPOSES_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    TERRITORIES_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_DAY_MINOR_FIELD_NUMBER: _ClassVar[int]
    MAX_TERM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVITY_OFFERED_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVITY_MULTIPLIER_BPS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedScalarFieldContainer[_vocabulary_pb2.DataCategory]
    allowed_purposes: _containers.RepeatedScalarFieldContainer[_vocabulary_pb2.Purpose]
    refused_purposes: _containers.RepeatedScalarFieldContainer[_vocabulary_pb2.Purpose]
    media: _containers.RepeatedScalarFieldContainer[_vocabulary_pb2.Medium]
    territories: _containers.RepeatedScalarFieldContainer[str]
    currency: str
    price_per_day_minor: int
    max_term_seconds: int
    exclusivity_offered: bool
    exclusivity_multiplier_bps: int
    updated_at: int
    def __init__(self, categories: _Optional[_Iterable[_Union[_vocabulary_pb2.DataCategory, str]]] = ..., allowed_purposes: _Optional[_Iterable[_Union[_vocabulary_pb2.Purpose, str]]] = ..., refused_purposes: _Optional[_Iterable[_Union[_vocabulary_pb2.Purpose, str]]] = ..., media: _Optional[_Iterable[_Union[_vocabulary_pb2.Medium, str]]] = ..., territories: _Optional[_Iterable[str]] = ..., currency: _Optional[str] = ..., price_per_day_minor: _Optional[int] = ..., max_term_seconds: _Optional[int] = ..., exclusivity_offered: _Optional[bool] = ..., exclusivity_multiplier_bps: _Optional[int] = ..., updated_at: _Optional[int] = ...) -> None: ...

class LicenceRequest(_message.Message):
    __slots__ = ("request_id", "state", "advertiser_key", "advertiser_organisation", "holder_key", "claims", "created_at", "expires_at", "updated_at", "reason", "failure", "auto_approved", "offer_ref", "message", "erased")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ADVERTISER_KEY_FIELD_NUMBER: _ClassVar[int]
    ADVERTISER_ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    HOLDER_KEY_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    AUTO_APPROVED_FIELD_NUMBER: _ClassVar[int]
    OFFER_REF_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERASED_FIELD_NUMBER: _ClassVar[int]
    request_id: bytes
    state: RequestState
    advertiser_key: bytes
    advertiser_organisation: str
    holder_key: bytes
    claims: bytes
    created_at: int
    expires_at: int
    updated_at: int
    reason: str
    failure: str
    auto_approved: bool
    offer_ref: bytes
    message: str
    erased: bool
    def __init__(self, request_id: _Optional[bytes] = ..., state: _Optional[_Union[RequestState, str]] = ..., advertiser_key: _Optional[bytes] = ..., advertiser_organisation: _Optional[str] = ..., holder_key: _Optional[bytes] = ..., claims: _Optional[bytes] = ..., created_at: _Optional[int] = ..., expires_at: _Optional[int] = ..., updated_at: _Optional[int] = ..., reason: _Optional[str] = ..., failure: _Optional[str] = ..., auto_approved: _Optional[bool] = ..., offer_ref: _Optional[bytes] = ..., message: _Optional[str] = ..., erased: _Optional[bool] = ...) -> None: ...

class LicenceRecord(_message.Message):
    __slots__ = ("licence_id", "token", "state", "holder_key", "licensee_key", "issued_at", "not_before", "not_after", "revoked_at", "uses", "max_uses", "request_id", "status_index", "status_list", "consent_key", "licensee_device_key", "asset_sha256", "erased")
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_KEY_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_KEY_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_INDEX_FIELD_NUMBER: _ClassVar[int]
    STATUS_LIST_FIELD_NUMBER: _ClassVar[int]
    CONSENT_KEY_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_DEVICE_KEY_FIELD_NUMBER: _ClassVar[int]
    ASSET_SHA256_FIELD_NUMBER: _ClassVar[int]
    ERASED_FIELD_NUMBER: _ClassVar[int]
    licence_id: bytes
    token: str
    state: LicenceState
    holder_key: bytes
    licensee_key: bytes
    issued_at: int
    not_before: int
    not_after: int
    revoked_at: int
    uses: int
    max_uses: int
    request_id: bytes
    status_index: int
    status_list: int
    consent_key: bytes
    licensee_device_key: bytes
    asset_sha256: _containers.RepeatedScalarFieldContainer[bytes]
    erased: bool
    def __init__(self, licence_id: _Optional[bytes] = ..., token: _Optional[str] = ..., state: _Optional[_Union[LicenceState, str]] = ..., holder_key: _Optional[bytes] = ..., licensee_key: _Optional[bytes] = ..., issued_at: _Optional[int] = ..., not_before: _Optional[int] = ..., not_after: _Optional[int] = ..., revoked_at: _Optional[int] = ..., uses: _Optional[int] = ..., max_uses: _Optional[int] = ..., request_id: _Optional[bytes] = ..., status_index: _Optional[int] = ..., status_list: _Optional[int] = ..., consent_key: _Optional[bytes] = ..., licensee_device_key: _Optional[bytes] = ..., asset_sha256: _Optional[_Iterable[bytes]] = ..., erased: _Optional[bool] = ...) -> None: ...

class AssetAccess(_message.Message):
    __slots__ = ("sha256", "licence_id", "licensee_key", "accessed_at")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCESSED_AT_FIELD_NUMBER: _ClassVar[int]
    sha256: bytes
    licence_id: bytes
    licensee_key: bytes
    accessed_at: int
    def __init__(self, sha256: _Optional[bytes] = ..., licence_id: _Optional[bytes] = ..., licensee_key: _Optional[bytes] = ..., accessed_at: _Optional[int] = ...) -> None: ...

class StandingRuleRecord(_message.Message):
    __slots__ = ("consent", "created_at", "withdrawn_at")
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_AT_FIELD_NUMBER: _ClassVar[int]
    consent: _licence_pb2.StandingConsent
    created_at: int
    withdrawn_at: int
    def __init__(self, consent: _Optional[_Union[_licence_pb2.StandingConsent, _Mapping]] = ..., created_at: _Optional[int] = ..., withdrawn_at: _Optional[int] = ...) -> None: ...

class TerminationReceipt(_message.Message):
    __slots__ = ("licence_id", "holder_key", "licensee_key", "revoked_at", "status_index", "sequence", "status_list")
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDER_KEY_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_KEY_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_INDEX_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_LIST_FIELD_NUMBER: _ClassVar[int]
    licence_id: bytes
    holder_key: bytes
    licensee_key: bytes
    revoked_at: int
    status_index: int
    sequence: int
    status_list: int
    def __init__(self, licence_id: _Optional[bytes] = ..., holder_key: _Optional[bytes] = ..., licensee_key: _Optional[bytes] = ..., revoked_at: _Optional[int] = ..., status_index: _Optional[int] = ..., sequence: _Optional[int] = ..., status_list: _Optional[int] = ...) -> None: ...

class SignedTerminationReceipt(_message.Message):
    __slots__ = ("receipt", "issuer_key_id", "signature")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    receipt: bytes
    issuer_key_id: bytes
    signature: bytes
    def __init__(self, receipt: _Optional[bytes] = ..., issuer_key_id: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Notice(_message.Message):
    __slots__ = ("kind", "at", "text", "subject")
    KIND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    kind: NoticeKind
    at: int
    text: str
    subject: str
    def __init__(self, kind: _Optional[_Union[NoticeKind, str]] = ..., at: _Optional[int] = ..., text: _Optional[str] = ..., subject: _Optional[str] = ...) -> None: ...
