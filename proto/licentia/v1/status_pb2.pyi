from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatusListBits(_message.Message):
    __slots__ = ("list_id", "expires_at", "bit_length", "bits_zlib")
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    BIT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    BITS_ZLIB_FIELD_NUMBER: _ClassVar[int]
    list_id: int
    expires_at: int
    bit_length: int
    bits_zlib: bytes
    def __init__(self, list_id: _Optional[int] = ..., expires_at: _Optional[int] = ..., bit_length: _Optional[int] = ..., bits_zlib: _Optional[bytes] = ...) -> None: ...

class StatusListSnapshot(_message.Message):
    __slots__ = ("issuer_key_id", "sequence", "taken_at", "bit_length", "bits_zlib", "lists")
    ISSUER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TAKEN_AT_FIELD_NUMBER: _ClassVar[int]
    BIT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    BITS_ZLIB_FIELD_NUMBER: _ClassVar[int]
    LISTS_FIELD_NUMBER: _ClassVar[int]
    issuer_key_id: bytes
    sequence: int
    taken_at: int
    bit_length: int
    bits_zlib: bytes
    lists: _containers.RepeatedCompositeFieldContainer[StatusListBits]
    def __init__(self, issuer_key_id: _Optional[bytes] = ..., sequence: _Optional[int] = ..., taken_at: _Optional[int] = ..., bit_length: _Optional[int] = ..., bits_zlib: _Optional[bytes] = ..., lists: _Optional[_Iterable[_Union[StatusListBits, _Mapping]]] = ...) -> None: ...

class SignedStatusSnapshot(_message.Message):
    __slots__ = ("snapshot", "signature")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    snapshot: bytes
    signature: bytes
    def __init__(self, snapshot: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class StatusEvent(_message.Message):
    __slots__ = ("sequence", "status_index", "revoked_at", "issuer_key_id", "signature", "status_list")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_INDEX_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    STATUS_LIST_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    status_index: int
    revoked_at: int
    issuer_key_id: bytes
    signature: bytes
    status_list: int
    def __init__(self, sequence: _Optional[int] = ..., status_index: _Optional[int] = ..., revoked_at: _Optional[int] = ..., issuer_key_id: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., status_list: _Optional[int] = ...) -> None: ...

class StatusHeartbeat(_message.Message):
    __slots__ = ("sequence", "at", "issuer_key_id", "signature", "key_set_sha256")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_SET_SHA256_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    at: int
    issuer_key_id: bytes
    signature: bytes
    key_set_sha256: bytes
    def __init__(self, sequence: _Optional[int] = ..., at: _Optional[int] = ..., issuer_key_id: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., key_set_sha256: _Optional[bytes] = ...) -> None: ...
