from licentia.v1 import ledger_pb2 as _ledger_pb2
from licentia.v1 import accounts_pb2 as _accounts_pb2
from licentia.v1 import records_pb2 as _records_pb2
from licentia.v1 import vocabulary_pb2 as _vocabulary_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterHolderRequest(_message.Message):
    __slots__ = ("handle", "display_name", "show_display_name")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SHOW_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    handle: str
    display_name: str
    show_display_name: bool
    def __init__(self, handle: _Optional[str] = ..., display_name: _Optional[str] = ..., show_display_name: _Optional[bool] = ...) -> None: ...

class RegisterHolderResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: _records_pb2.Profile
    def __init__(self, profile: _Optional[_Union[_records_pb2.Profile, _Mapping]] = ...) -> None: ...

class RegisterAdvertiserRequest(_message.Message):
    __slots__ = ("organisation", "country")
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    organisation: str
    country: str
    def __init__(self, organisation: _Optional[str] = ..., country: _Optional[str] = ...) -> None: ...

class RegisterAdvertiserResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: _records_pb2.Profile
    def __init__(self, profile: _Optional[_Union[_records_pb2.Profile, _Mapping]] = ...) -> None: ...

class RegisterPlatformRequest(_message.Message):
    __slots__ = ("platform_id", "name")
    PLATFORM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    platform_id: str
    name: str
    def __init__(self, platform_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class RegisterPlatformResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: _records_pb2.Profile
    def __init__(self, profile: _Optional[_Union[_records_pb2.Profile, _Mapping]] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: _records_pb2.Profile
    def __init__(self, profile: _Optional[_Union[_records_pb2.Profile, _Mapping]] = ...) -> None: ...

class UpdateProfileRequest(_message.Message):
    __slots__ = ("display_name", "show_display_name")
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SHOW_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    show_display_name: bool
    def __init__(self, display_name: _Optional[str] = ..., show_display_name: _Optional[bool] = ...) -> None: ...

class UpdateProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: _records_pb2.Profile
    def __init__(self, profile: _Optional[_Union[_records_pb2.Profile, _Mapping]] = ...) -> None: ...

class DeclareAssetRequest(_message.Message):
    __slots__ = ("category", "sha256", "label", "content")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    category: _vocabulary_pb2.DataCategory
    sha256: bytes
    label: str
    content: bytes
    def __init__(self, category: _Optional[_Union[_vocabulary_pb2.DataCategory, str]] = ..., sha256: _Optional[bytes] = ..., label: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class DeclareAssetResponse(_message.Message):
    __slots__ = ("asset",)
    ASSET_FIELD_NUMBER: _ClassVar[int]
    asset: _records_pb2.AssetRecord
    def __init__(self, asset: _Optional[_Union[_records_pb2.AssetRecord, _Mapping]] = ...) -> None: ...

class ListAssetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAssetsResponse(_message.Message):
    __slots__ = ("assets",)
    ASSETS_FIELD_NUMBER: _ClassVar[int]
    assets: _containers.RepeatedCompositeFieldContainer[_records_pb2.AssetRecord]
    def __init__(self, assets: _Optional[_Iterable[_Union[_records_pb2.AssetRecord, _Mapping]]] = ...) -> None: ...

class SetTermsRequest(_message.Message):
    __slots__ = ("terms",)
    TERMS_FIELD_NUMBER: _ClassVar[int]
    terms: _records_pb2.Terms
    def __init__(self, terms: _Optional[_Union[_records_pb2.Terms, _Mapping]] = ...) -> None: ...

class SetTermsResponse(_message.Message):
    __slots__ = ("terms",)
    TERMS_FIELD_NUMBER: _ClassVar[int]
    terms: _records_pb2.Terms
    def __init__(self, terms: _Optional[_Union[_records_pb2.Terms, _Mapping]] = ...) -> None: ...

class GetTermsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTermsResponse(_message.Message):
    __slots__ = ("terms",)
    TERMS_FIELD_NUMBER: _ClassVar[int]
    terms: _records_pb2.Terms
    def __init__(self, terms: _Optional[_Union[_records_pb2.Terms, _Mapping]] = ...) -> None: ...

class SetObjectionRequest(_message.Message):
    __slots__ = ("objecting",)
    OBJECTING_FIELD_NUMBER: _ClassVar[int]
    objecting: bool
    def __init__(self, objecting: _Optional[bool] = ...) -> None: ...

class SetObjectionResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: _records_pb2.Profile
    def __init__(self, profile: _Optional[_Union[_records_pb2.Profile, _Mapping]] = ...) -> None: ...

class ExportDataRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportDataResponse(_message.Message):
    __slots__ = ("profile", "assets", "terms", "requests", "licences", "accesses", "standing_rules", "exported_at", "payout_destinations", "key_set", "ledger")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    ASSETS_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    LICENCES_FIELD_NUMBER: _ClassVar[int]
    ACCESSES_FIELD_NUMBER: _ClassVar[int]
    STANDING_RULES_FIELD_NUMBER: _ClassVar[int]
    EXPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    PAYOUT_DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    KEY_SET_FIELD_NUMBER: _ClassVar[int]
    LEDGER_FIELD_NUMBER: _ClassVar[int]
    profile: _records_pb2.Profile
    assets: _containers.RepeatedCompositeFieldContainer[_records_pb2.AssetRecord]
    terms: _records_pb2.Terms
    requests: _containers.RepeatedCompositeFieldContainer[_records_pb2.LicenceRequest]
    licences: _containers.RepeatedCompositeFieldContainer[_records_pb2.LicenceRecord]
    accesses: _containers.RepeatedCompositeFieldContainer[_records_pb2.AssetAccess]
    standing_rules: _containers.RepeatedCompositeFieldContainer[_records_pb2.StandingRuleRecord]
    exported_at: int
    payout_destinations: _containers.RepeatedCompositeFieldContainer[_ledger_pb2.PayoutDestination]
    key_set: _accounts_pb2.GetKeySetResponse
    ledger: _containers.RepeatedCompositeFieldContainer[_ledger_pb2.StatementLine]
    def __init__(self, profile: _Optional[_Union[_records_pb2.Profile, _Mapping]] = ..., assets: _Optional[_Iterable[_Union[_records_pb2.AssetRecord, _Mapping]]] = ..., terms: _Optional[_Union[_records_pb2.Terms, _Mapping]] = ..., requests: _Optional[_Iterable[_Union[_records_pb2.LicenceRequest, _Mapping]]] = ..., licences: _Optional[_Iterable[_Union[_records_pb2.LicenceRecord, _Mapping]]] = ..., accesses: _Optional[_Iterable[_Union[_records_pb2.AssetAccess, _Mapping]]] = ..., standing_rules: _Optional[_Iterable[_Union[_records_pb2.StandingRuleRecord, _Mapping]]] = ..., exported_at: _Optional[int] = ..., payout_destinations: _Optional[_Iterable[_Union[_ledger_pb2.PayoutDestination, _Mapping]]] = ..., key_set: _Optional[_Union[_accounts_pb2.GetKeySetResponse, _Mapping]] = ..., ledger: _Optional[_Iterable[_Union[_ledger_pb2.StatementLine, _Mapping]]] = ...) -> None: ...

class EraseAssetsRequest(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, sha256: _Optional[_Iterable[bytes]] = ...) -> None: ...

class EraseAssetsResponse(_message.Message):
    __slots__ = ("erased", "revoked_licence_ids")
    ERASED_FIELD_NUMBER: _ClassVar[int]
    REVOKED_LICENCE_IDS_FIELD_NUMBER: _ClassVar[int]
    erased: int
    revoked_licence_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, erased: _Optional[int] = ..., revoked_licence_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class DeleteAccountRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteAccountResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: SignedErasureReceipt
    def __init__(self, receipt: _Optional[_Union[SignedErasureReceipt, _Mapping]] = ...) -> None: ...

class ErasureReceipt(_message.Message):
    __slots__ = ("account", "erased_at", "revoked_licence_ids", "assets_erased", "log_index", "erased", "kept")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ERASED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_LICENCE_IDS_FIELD_NUMBER: _ClassVar[int]
    ASSETS_ERASED_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    ERASED_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    erased_at: int
    revoked_licence_ids: _containers.RepeatedScalarFieldContainer[bytes]
    assets_erased: int
    log_index: int
    erased: _containers.RepeatedScalarFieldContainer[str]
    kept: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account: _Optional[bytes] = ..., erased_at: _Optional[int] = ..., revoked_licence_ids: _Optional[_Iterable[bytes]] = ..., assets_erased: _Optional[int] = ..., log_index: _Optional[int] = ..., erased: _Optional[_Iterable[str]] = ..., kept: _Optional[_Iterable[str]] = ...) -> None: ...

class SignedErasureReceipt(_message.Message):
    __slots__ = ("receipt", "issuer_key_id", "signature")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    receipt: bytes
    issuer_key_id: bytes
    signature: bytes
    def __init__(self, receipt: _Optional[bytes] = ..., issuer_key_id: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class ListPlatformsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class PlatformEntry(_message.Message):
    __slots__ = ("key", "platform_id", "registered_at", "device_keys")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_KEYS_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    platform_id: str
    registered_at: int
    device_keys: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, key: _Optional[bytes] = ..., platform_id: _Optional[str] = ..., registered_at: _Optional[int] = ..., device_keys: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ListPlatformsResponse(_message.Message):
    __slots__ = ("platforms", "next_page_token")
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    platforms: _containers.RepeatedCompositeFieldContainer[PlatformEntry]
    next_page_token: str
    def __init__(self, platforms: _Optional[_Iterable[_Union[PlatformEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UploadAssetHeader(_message.Message):
    __slots__ = ("category", "sha256", "label", "size")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    category: _vocabulary_pb2.DataCategory
    sha256: bytes
    label: str
    size: int
    def __init__(self, category: _Optional[_Union[_vocabulary_pb2.DataCategory, str]] = ..., sha256: _Optional[bytes] = ..., label: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class UploadAssetRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadAssetHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadAssetHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadAssetResponse(_message.Message):
    __slots__ = ("asset",)
    ASSET_FIELD_NUMBER: _ClassVar[int]
    asset: _records_pb2.AssetRecord
    def __init__(self, asset: _Optional[_Union[_records_pb2.AssetRecord, _Mapping]] = ...) -> None: ...

class GetAssetLimitsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAssetLimitsResponse(_message.Message):
    __slots__ = ("max_asset_bytes", "chunk_bytes", "inline_asset_bytes")
    MAX_ASSET_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    INLINE_ASSET_BYTES_FIELD_NUMBER: _ClassVar[int]
    max_asset_bytes: int
    chunk_bytes: int
    inline_asset_bytes: int
    def __init__(self, max_asset_bytes: _Optional[int] = ..., chunk_bytes: _Optional[int] = ..., inline_asset_bytes: _Optional[int] = ...) -> None: ...

class IssueContentCertificateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IssueContentCertificateResponse(_message.Message):
    __slots__ = ("certificate", "root", "issuer_key_id", "not_after")
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    certificate: bytes
    root: bytes
    issuer_key_id: bytes
    not_after: int
    def __init__(self, certificate: _Optional[bytes] = ..., root: _Optional[bytes] = ..., issuer_key_id: _Optional[bytes] = ..., not_after: _Optional[int] = ...) -> None: ...
