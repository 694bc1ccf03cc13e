from licentia.v1 import keys_pb2 as _keys_pb2
from licentia.v1 import records_pb2 as _records_pb2
from licentia.v1 import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TerminationCause(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TERMINATION_CAUSE_UNSPECIFIED: _ClassVar[TerminationCause]
    TERMINATION_CAUSE_REVOKED: _ClassVar[TerminationCause]
    TERMINATION_CAUSE_ERASED: _ClassVar[TerminationCause]
    TERMINATION_CAUSE_LICENSEE_KEY_COMPROMISED: _ClassVar[TerminationCause]
TERMINATION_CAUSE_UNSPECIFIED: TerminationCause
TERMINATION_CAUSE_REVOKED: TerminationCause
TERMINATION_CAUSE_ERASED: TerminationCause
TERMINATION_CAUSE_LICENSEE_KEY_COMPROMISED: TerminationCause

class GetLicenceRequest(_message.Message):
    __slots__ = ("licence_id",)
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    licence_id: bytes
    def __init__(self, licence_id: _Optional[bytes] = ...) -> None: ...

class GetLicenceResponse(_message.Message):
    __slots__ = ("licence",)
    LICENCE_FIELD_NUMBER: _ClassVar[int]
    licence: _records_pb2.LicenceRecord
    def __init__(self, licence: _Optional[_Union[_records_pb2.LicenceRecord, _Mapping]] = ...) -> None: ...

class ListLicencesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLicencesResponse(_message.Message):
    __slots__ = ("licences", "next_page_token")
    LICENCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    licences: _containers.RepeatedCompositeFieldContainer[_records_pb2.LicenceRecord]
    next_page_token: str
    def __init__(self, licences: _Optional[_Iterable[_Union[_records_pb2.LicenceRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeLicenceRequest(_message.Message):
    __slots__ = ("licence_id",)
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    licence_id: bytes
    def __init__(self, licence_id: _Optional[bytes] = ...) -> None: ...

class RevokeLicenceResponse(_message.Message):
    __slots__ = ("licence", "receipt")
    LICENCE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    licence: _records_pb2.LicenceRecord
    receipt: _records_pb2.SignedTerminationReceipt
    def __init__(self, licence: _Optional[_Union[_records_pb2.LicenceRecord, _Mapping]] = ..., receipt: _Optional[_Union[_records_pb2.SignedTerminationReceipt, _Mapping]] = ...) -> None: ...

class WatchRevocationsRequest(_message.Message):
    __slots__ = ("after_sequence",)
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    def __init__(self, after_sequence: _Optional[int] = ...) -> None: ...

class WatchRevocationsResponse(_message.Message):
    __slots__ = ("snapshot", "event", "heartbeat")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    snapshot: _status_pb2.SignedStatusSnapshot
    event: _status_pb2.StatusEvent
    heartbeat: _status_pb2.StatusHeartbeat
    def __init__(self, snapshot: _Optional[_Union[_status_pb2.SignedStatusSnapshot, _Mapping]] = ..., event: _Optional[_Union[_status_pb2.StatusEvent, _Mapping]] = ..., heartbeat: _Optional[_Union[_status_pb2.StatusHeartbeat, _Mapping]] = ...) -> None: ...

class GetStatusSnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusSnapshotResponse(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: _status_pb2.SignedStatusSnapshot
    def __init__(self, snapshot: _Optional[_Union[_status_pb2.SignedStatusSnapshot, _Mapping]] = ...) -> None: ...

class GetIssuerKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetIssuerKeysResponse(_message.Message):
    __slots__ = ("keys", "content_roots", "content_term_seconds")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_ROOTS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TERM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    keys: _keys_pb2.IssuerKeySet
    content_roots: _containers.RepeatedScalarFieldContainer[bytes]
    content_term_seconds: int
    def __init__(self, keys: _Optional[_Union[_keys_pb2.IssuerKeySet, _Mapping]] = ..., content_roots: _Optional[_Iterable[bytes]] = ..., content_term_seconds: _Optional[int] = ...) -> None: ...

class FetchAssetRequest(_message.Message):
    __slots__ = ("licence_id", "sha256")
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    licence_id: bytes
    sha256: bytes
    def __init__(self, licence_id: _Optional[bytes] = ..., sha256: _Optional[bytes] = ...) -> None: ...

class FetchAssetResponse(_message.Message):
    __slots__ = ("content",)
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    def __init__(self, content: _Optional[bytes] = ...) -> None: ...

class ListAccessesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAccessesResponse(_message.Message):
    __slots__ = ("accesses",)
    ACCESSES_FIELD_NUMBER: _ClassVar[int]
    accesses: _containers.RepeatedCompositeFieldContainer[_records_pb2.AssetAccess]
    def __init__(self, accesses: _Optional[_Iterable[_Union[_records_pb2.AssetAccess, _Mapping]]] = ...) -> None: ...

class WatchLicenceEventsRequest(_message.Message):
    __slots__ = ("after_sequence",)
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    def __init__(self, after_sequence: _Optional[int] = ...) -> None: ...

class WatchLicenceEventsResponse(_message.Message):
    __slots__ = ("sequence", "licence_id", "cause", "at")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    licence_id: bytes
    cause: TerminationCause
    at: int
    def __init__(self, sequence: _Optional[int] = ..., licence_id: _Optional[bytes] = ..., cause: _Optional[_Union[TerminationCause, str]] = ..., at: _Optional[int] = ...) -> None: ...

class FetchAssetChunk(_message.Message):
    __slots__ = ("chunk", "size")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    size: int
    def __init__(self, chunk: _Optional[bytes] = ..., size: _Optional[int] = ...) -> None: ...
