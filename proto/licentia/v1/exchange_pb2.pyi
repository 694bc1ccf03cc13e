from licentia.v1 import licence_pb2 as _licence_pb2
from licentia.v1 import records_pb2 as _records_pb2
from licentia.v1 import vocabulary_pb2 as _vocabulary_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchOffersRequest(_message.Message):
    __slots__ = ("category", "purpose", "medium", "territory", "max_price_per_day_minor", "page_size", "page_token")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    MEDIUM_FIELD_NUMBER: _ClassVar[int]
    TERRITORY_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_PER_DAY_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    category: _vocabulary_pb2.DataCategory
    purpose: _vocabulary_pb2.Purpose
    medium: _vocabulary_pb2.Medium
    territory: str
    max_price_per_day_minor: int
    page_size: int
    page_token: str
    def __init__(self, category: _Optional[_Union[_vocabulary_pb2.DataCategory, str]] = ..., purpose: _Optional[_Union[_vocabulary_pb2.Purpose, str]] = ..., medium: _Optional[_Union[_vocabulary_pb2.Medium, str]] = ..., territory: _Optional[str] = ..., max_price_per_day_minor: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("display_name", "terms", "offer_ref", "offered_assets")
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    OFFER_REF_FIELD_NUMBER: _ClassVar[int]
    OFFERED_ASSETS_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    terms: _records_pb2.Terms
    offer_ref: bytes
    offered_assets: _containers.RepeatedCompositeFieldContainer[OfferedAsset]
    def __init__(self, display_name: _Optional[str] = ..., terms: _Optional[_Union[_records_pb2.Terms, _Mapping]] = ..., offer_ref: _Optional[bytes] = ..., offered_assets: _Optional[_Iterable[_Union[OfferedAsset, _Mapping]]] = ...) -> None: ...

class OfferedAsset(_message.Message):
    __slots__ = ("category", "asset_ref", "stored")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    ASSET_REF_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    category: _vocabulary_pb2.DataCategory
    asset_ref: bytes
    stored: bool
    def __init__(self, category: _Optional[_Union[_vocabulary_pb2.DataCategory, str]] = ..., asset_ref: _Optional[bytes] = ..., stored: _Optional[bool] = ...) -> None: ...

class SearchOffersResponse(_message.Message):
    __slots__ = ("offers", "next_page_token")
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    offers: _containers.RepeatedCompositeFieldContainer[Offer]
    next_page_token: str
    def __init__(self, offers: _Optional[_Iterable[_Union[Offer, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RequestLicenceRequest(_message.Message):
    __slots__ = ("scope", "not_before", "not_after", "max_uses", "exclusive", "offered_price_minor", "message", "price_per_use_minor", "idempotency_key", "offer_ref", "asset_refs")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    OFFERED_PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_USE_MINOR_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    OFFER_REF_FIELD_NUMBER: _ClassVar[int]
    ASSET_REFS_FIELD_NUMBER: _ClassVar[int]
    scope: _licence_pb2.Scope
    not_before: int
    not_after: int
    max_uses: int
    exclusive: bool
    offered_price_minor: int
    message: str
    price_per_use_minor: int
    idempotency_key: bytes
    offer_ref: bytes
    asset_refs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, scope: _Optional[_Union[_licence_pb2.Scope, _Mapping]] = ..., not_before: _Optional[int] = ..., not_after: _Optional[int] = ..., max_uses: _Optional[int] = ..., exclusive: _Optional[bool] = ..., offered_price_minor: _Optional[int] = ..., message: _Optional[str] = ..., price_per_use_minor: _Optional[int] = ..., idempotency_key: _Optional[bytes] = ..., offer_ref: _Optional[bytes] = ..., asset_refs: _Optional[_Iterable[bytes]] = ...) -> None: ...

class RequestLicenceResponse(_message.Message):
    __slots__ = ("request", "licence")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    LICENCE_FIELD_NUMBER: _ClassVar[int]
    request: _records_pb2.LicenceRequest
    licence: _records_pb2.LicenceRecord
    def __init__(self, request: _Optional[_Union[_records_pb2.LicenceRequest, _Mapping]] = ..., licence: _Optional[_Union[_records_pb2.LicenceRecord, _Mapping]] = ...) -> None: ...

class GetRequestRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: bytes
    def __init__(self, request_id: _Optional[bytes] = ...) -> None: ...

class GetRequestResponse(_message.Message):
    __slots__ = ("request", "licence")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    LICENCE_FIELD_NUMBER: _ClassVar[int]
    request: _records_pb2.LicenceRequest
    licence: _records_pb2.LicenceRecord
    def __init__(self, request: _Optional[_Union[_records_pb2.LicenceRequest, _Mapping]] = ..., licence: _Optional[_Union[_records_pb2.LicenceRecord, _Mapping]] = ...) -> None: ...

class WatchRequestRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: bytes
    def __init__(self, request_id: _Optional[bytes] = ...) -> None: ...

class WatchRequestResponse(_message.Message):
    __slots__ = ("request", "licence")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    LICENCE_FIELD_NUMBER: _ClassVar[int]
    request: _records_pb2.LicenceRequest
    licence: _records_pb2.LicenceRecord
    def __init__(self, request: _Optional[_Union[_records_pb2.LicenceRequest, _Mapping]] = ..., licence: _Optional[_Union[_records_pb2.LicenceRecord, _Mapping]] = ...) -> None: ...

class ListInboxRequest(_message.Message):
    __slots__ = ("include_answered",)
    INCLUDE_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    include_answered: bool
    def __init__(self, include_answered: _Optional[bool] = ...) -> None: ...

class ListInboxResponse(_message.Message):
    __slots__ = ("requests", "notices")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[_records_pb2.LicenceRequest]
    notices: _containers.RepeatedCompositeFieldContainer[_records_pb2.Notice]
    def __init__(self, requests: _Optional[_Iterable[_Union[_records_pb2.LicenceRequest, _Mapping]]] = ..., notices: _Optional[_Iterable[_Union[_records_pb2.Notice, _Mapping]]] = ...) -> None: ...

class ApproveRequestRequest(_message.Message):
    __slots__ = ("request_id", "holder_signature", "consent_key", "consent_key_proof")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CONSENT_KEY_FIELD_NUMBER: _ClassVar[int]
    CONSENT_KEY_PROOF_FIELD_NUMBER: _ClassVar[int]
    request_id: bytes
    holder_signature: bytes
    consent_key: bytes
    consent_key_proof: bytes
    def __init__(self, request_id: _Optional[bytes] = ..., holder_signature: _Optional[bytes] = ..., consent_key: _Optional[bytes] = ..., consent_key_proof: _Optional[bytes] = ...) -> None: ...

class ApproveRequestResponse(_message.Message):
    __slots__ = ("request", "licence")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    LICENCE_FIELD_NUMBER: _ClassVar[int]
    request: _records_pb2.LicenceRequest
    licence: _records_pb2.LicenceRecord
    def __init__(self, request: _Optional[_Union[_records_pb2.LicenceRequest, _Mapping]] = ..., licence: _Optional[_Union[_records_pb2.LicenceRecord, _Mapping]] = ...) -> None: ...

class DeclineRequestRequest(_message.Message):
    __slots__ = ("request_id", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: bytes
    reason: str
    def __init__(self, request_id: _Optional[bytes] = ..., reason: _Optional[str] = ...) -> None: ...

class DeclineRequestResponse(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _records_pb2.LicenceRequest
    def __init__(self, request: _Optional[_Union[_records_pb2.LicenceRequest, _Mapping]] = ...) -> None: ...

class WithdrawRequestRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: bytes
    def __init__(self, request_id: _Optional[bytes] = ...) -> None: ...

class WithdrawRequestResponse(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _records_pb2.LicenceRequest
    def __init__(self, request: _Optional[_Union[_records_pb2.LicenceRequest, _Mapping]] = ...) -> None: ...

class AddStandingRuleRequest(_message.Message):
    __slots__ = ("consent",)
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    consent: _licence_pb2.StandingConsent
    def __init__(self, consent: _Optional[_Union[_licence_pb2.StandingConsent, _Mapping]] = ...) -> None: ...

class AddStandingRuleResponse(_message.Message):
    __slots__ = ("rule",)
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: _records_pb2.StandingRuleRecord
    def __init__(self, rule: _Optional[_Union[_records_pb2.StandingRuleRecord, _Mapping]] = ...) -> None: ...

class ListStandingRulesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStandingRulesResponse(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[_records_pb2.StandingRuleRecord]
    def __init__(self, rules: _Optional[_Iterable[_Union[_records_pb2.StandingRuleRecord, _Mapping]]] = ...) -> None: ...

class WithdrawStandingRuleRequest(_message.Message):
    __slots__ = ("rule_id",)
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    rule_id: bytes
    def __init__(self, rule_id: _Optional[bytes] = ...) -> None: ...

class WithdrawStandingRuleResponse(_message.Message):
    __slots__ = ("rule",)
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: _records_pb2.StandingRuleRecord
    def __init__(self, rule: _Optional[_Union[_records_pb2.StandingRuleRecord, _Mapping]] = ...) -> None: ...
