from licentia.v1 import vocabulary_pb2 as _vocabulary_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Asset(_message.Message):
    __slots__ = ("category", "sha256")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    category: _vocabulary_pb2.DataCategory
    sha256: bytes
    def __init__(self, category: _Optional[_Union[_vocabulary_pb2.DataCategory, str]] = ..., sha256: _Optional[bytes] = ...) -> None: ...

class Scope(_message.Message):
    __slots__ = ("categories", "purposes", "media", "territories")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    TERRITORIES_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedScalarFieldContainer[_vocabulary_pb2.DataCategory]
    purposes: _containers.RepeatedScalarFieldContainer[_vocabulary_pb2.Purpose]
    media: _containers.RepeatedScalarFieldContainer[_vocabulary_pb2.Medium]
    territories: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, categories: _Optional[_Iterable[_Union[_vocabulary_pb2.DataCategory, str]]] = ..., purposes: _Optional[_Iterable[_Union[_vocabulary_pb2.Purpose, str]]] = ..., media: _Optional[_Iterable[_Union[_vocabulary_pb2.Medium, str]]] = ..., territories: _Optional[_Iterable[str]] = ...) -> None: ...

class PriceTerms(_message.Message):
    __slots__ = ("currency", "amount_minor", "per_use_minor", "fee_bps")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    PER_USE_MINOR_FIELD_NUMBER: _ClassVar[int]
    FEE_BPS_FIELD_NUMBER: _ClassVar[int]
    currency: str
    amount_minor: int
    per_use_minor: int
    fee_bps: int
    def __init__(self, currency: _Optional[str] = ..., amount_minor: _Optional[int] = ..., per_use_minor: _Optional[int] = ..., fee_bps: _Optional[int] = ...) -> None: ...

class LicenceClaims(_message.Message):
    __slots__ = ("licence_id", "issuer_key_id", "holder_key", "licensee_key", "assets", "scope", "issued_at", "not_before", "not_after", "max_uses", "exclusive", "status_index", "price", "asset_salt", "status_list")
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDER_KEY_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_KEY_FIELD_NUMBER: _ClassVar[int]
    ASSETS_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    STATUS_INDEX_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    ASSET_SALT_FIELD_NUMBER: _ClassVar[int]
    STATUS_LIST_FIELD_NUMBER: _ClassVar[int]
    licence_id: bytes
    issuer_key_id: bytes
    holder_key: bytes
    licensee_key: bytes
    assets: _containers.RepeatedCompositeFieldContainer[Asset]
    scope: Scope
    issued_at: int
    not_before: int
    not_after: int
    max_uses: int
    exclusive: bool
    status_index: int
    price: PriceTerms
    asset_salt: bytes
    status_list: int
    def __init__(self, licence_id: _Optional[bytes] = ..., issuer_key_id: _Optional[bytes] = ..., holder_key: _Optional[bytes] = ..., licensee_key: _Optional[bytes] = ..., assets: _Optional[_Iterable[_Union[Asset, _Mapping]]] = ..., scope: _Optional[_Union[Scope, _Mapping]] = ..., issued_at: _Optional[int] = ..., not_before: _Optional[int] = ..., not_after: _Optional[int] = ..., max_uses: _Optional[int] = ..., exclusive: _Optional[bool] = ..., status_index: _Optional[int] = ..., price: _Optional[_Union[PriceTerms, _Mapping]] = ..., asset_salt: _Optional[bytes] = ..., status_list: _Optional[int] = ...) -> None: ...

class StandingRule(_message.Message):
    __slots__ = ("rule_id", "holder_key", "scope", "asset_sha256", "not_before", "not_after", "max_term_seconds", "min_price_per_day_minor", "currency", "allow_exclusive", "max_uses", "licensee_keys")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDER_KEY_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ASSET_SHA256_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    MAX_TERM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MIN_PRICE_PER_DAY_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_EXCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_KEYS_FIELD_NUMBER: _ClassVar[int]
    rule_id: bytes
    holder_key: bytes
    scope: Scope
    asset_sha256: _containers.RepeatedScalarFieldContainer[bytes]
    not_before: int
    not_after: int
    max_term_seconds: int
    min_price_per_day_minor: int
    currency: str
    allow_exclusive: bool
    max_uses: int
    licensee_keys: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, rule_id: _Optional[bytes] = ..., holder_key: _Optional[bytes] = ..., scope: _Optional[_Union[Scope, _Mapping]] = ..., asset_sha256: _Optional[_Iterable[bytes]] = ..., not_before: _Optional[int] = ..., not_after: _Optional[int] = ..., max_term_seconds: _Optional[int] = ..., min_price_per_day_minor: _Optional[int] = ..., currency: _Optional[str] = ..., allow_exclusive: _Optional[bool] = ..., max_uses: _Optional[int] = ..., licensee_keys: _Optional[_Iterable[bytes]] = ...) -> None: ...

class StandingConsent(_message.Message):
    __slots__ = ("rule", "holder_signature")
    RULE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    rule: bytes
    holder_signature: bytes
    def __init__(self, rule: _Optional[bytes] = ..., holder_signature: _Optional[bytes] = ...) -> None: ...

class RuleCommitment(_message.Message):
    __slots__ = ("salt", "digest")
    SALT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    salt: bytes
    digest: bytes
    def __init__(self, salt: _Optional[bytes] = ..., digest: _Optional[bytes] = ...) -> None: ...

class LogPromise(_message.Message):
    __slots__ = ("index", "logged_at")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LOGGED_AT_FIELD_NUMBER: _ClassVar[int]
    index: int
    logged_at: int
    def __init__(self, index: _Optional[int] = ..., logged_at: _Optional[int] = ...) -> None: ...

class SignedLicence(_message.Message):
    __slots__ = ("claims", "holder_signature", "standing", "rule_commitment", "issuer_signature", "log_promise")
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    HOLDER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    STANDING_FIELD_NUMBER: _ClassVar[int]
    RULE_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    LOG_PROMISE_FIELD_NUMBER: _ClassVar[int]
    claims: bytes
    holder_signature: bytes
    standing: StandingConsent
    rule_commitment: RuleCommitment
    issuer_signature: bytes
    log_promise: LogPromise
    def __init__(self, claims: _Optional[bytes] = ..., holder_signature: _Optional[bytes] = ..., standing: _Optional[_Union[StandingConsent, _Mapping]] = ..., rule_commitment: _Optional[_Union[RuleCommitment, _Mapping]] = ..., issuer_signature: _Optional[bytes] = ..., log_promise: _Optional[_Union[LogPromise, _Mapping]] = ...) -> None: ...

class IntendedUse(_message.Message):
    __slots__ = ("category", "purpose", "medium", "territory", "asset_sha256")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    MEDIUM_FIELD_NUMBER: _ClassVar[int]
    TERRITORY_FIELD_NUMBER: _ClassVar[int]
    ASSET_SHA256_FIELD_NUMBER: _ClassVar[int]
    category: _vocabulary_pb2.DataCategory
    purpose: _vocabulary_pb2.Purpose
    medium: _vocabulary_pb2.Medium
    territory: str
    asset_sha256: bytes
    def __init__(self, category: _Optional[_Union[_vocabulary_pb2.DataCategory, str]] = ..., purpose: _Optional[_Union[_vocabulary_pb2.Purpose, str]] = ..., medium: _Optional[_Union[_vocabulary_pb2.Medium, str]] = ..., territory: _Optional[str] = ..., asset_sha256: _Optional[bytes] = ...) -> None: ...

class PresentationClaims(_message.Message):
    __slots__ = ("licence_id", "audience", "use", "presented_at", "nonce")
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    USE_FIELD_NUMBER: _ClassVar[int]
    PRESENTED_AT_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    licence_id: bytes
    audience: str
    use: IntendedUse
    presented_at: int
    nonce: bytes
    def __init__(self, licence_id: _Optional[bytes] = ..., audience: _Optional[str] = ..., use: _Optional[_Union[IntendedUse, _Mapping]] = ..., presented_at: _Optional[int] = ..., nonce: _Optional[bytes] = ...) -> None: ...

class SignedPresentation(_message.Message):
    __slots__ = ("claims", "signature")
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    claims: bytes
    signature: bytes
    def __init__(self, claims: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...
