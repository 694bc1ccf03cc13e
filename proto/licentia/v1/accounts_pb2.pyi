from licentia.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_ROLE_UNSPECIFIED: _ClassVar[KeyRole]
    KEY_ROLE_DEVICE: _ClassVar[KeyRole]
    KEY_ROLE_RECOVERY: _ClassVar[KeyRole]

class KeySetChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_SET_CHANGE_KIND_UNSPECIFIED: _ClassVar[KeySetChangeKind]
    KEY_SET_CHANGE_KIND_ADD_KEY: _ClassVar[KeySetChangeKind]
    KEY_SET_CHANGE_KIND_REMOVE_KEY: _ClassVar[KeySetChangeKind]
    KEY_SET_CHANGE_KIND_RECOVER: _ClassVar[KeySetChangeKind]

class KeyRemovalCause(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_REMOVAL_CAUSE_UNSPECIFIED: _ClassVar[KeyRemovalCause]
    KEY_REMOVAL_CAUSE_RETIRED: _ClassVar[KeyRemovalCause]
    KEY_REMOVAL_CAUSE_COMPROMISED: _ClassVar[KeyRemovalCause]
KEY_ROLE_UNSPECIFIED: KeyRole
KEY_ROLE_DEVICE: KeyRole
KEY_ROLE_RECOVERY: KeyRole
KEY_SET_CHANGE_KIND_UNSPECIFIED: KeySetChangeKind
KEY_SET_CHANGE_KIND_ADD_KEY: KeySetChangeKind
KEY_SET_CHANGE_KIND_REMOVE_KEY: KeySetChangeKind
KEY_SET_CHANGE_KIND_RECOVER: KeySetChangeKind
KEY_REMOVAL_CAUSE_UNSPECIFIED: KeyRemovalCause
KEY_REMOVAL_CAUSE_RETIRED: KeyRemovalCause
KEY_REMOVAL_CAUSE_COMPROMISED: KeyRemovalCause

class AccountKey(_message.Message):
    __slots__ = ("public_key", "role", "name", "proof")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    role: KeyRole
    name: str
    proof: bytes
    def __init__(self, public_key: _Optional[bytes] = ..., role: _Optional[_Union[KeyRole, str]] = ..., name: _Optional[str] = ..., proof: _Optional[bytes] = ...) -> None: ...

class KeySetChange(_message.Message):
    __slots__ = ("account", "sequence", "previous", "kind", "keys", "cause", "at")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    sequence: int
    previous: bytes
    kind: KeySetChangeKind
    keys: _containers.RepeatedCompositeFieldContainer[AccountKey]
    cause: KeyRemovalCause
    at: int
    def __init__(self, account: _Optional[bytes] = ..., sequence: _Optional[int] = ..., previous: _Optional[bytes] = ..., kind: _Optional[_Union[KeySetChangeKind, str]] = ..., keys: _Optional[_Iterable[_Union[AccountKey, _Mapping]]] = ..., cause: _Optional[_Union[KeyRemovalCause, str]] = ..., at: _Optional[int] = ...) -> None: ...

class SignedKeySetChange(_message.Message):
    __slots__ = ("change", "signer", "signature")
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    change: bytes
    signer: bytes
    signature: bytes
    def __init__(self, change: _Optional[bytes] = ..., signer: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class RemovedKey(_message.Message):
    __slots__ = ("public_key", "role", "name", "sequence", "removed_at", "cause")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    REMOVED_AT_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    role: KeyRole
    name: str
    sequence: int
    removed_at: int
    cause: KeyRemovalCause
    def __init__(self, public_key: _Optional[bytes] = ..., role: _Optional[_Union[KeyRole, str]] = ..., name: _Optional[str] = ..., sequence: _Optional[int] = ..., removed_at: _Optional[int] = ..., cause: _Optional[_Union[KeyRemovalCause, str]] = ...) -> None: ...

class GetKeySetRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetKeySetResponse(_message.Message):
    __slots__ = ("account", "sequence", "keys", "removed", "changes", "caller_key")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    CALLER_KEY_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    sequence: int
    keys: _containers.RepeatedCompositeFieldContainer[AccountKey]
    removed: _containers.RepeatedCompositeFieldContainer[RemovedKey]
    changes: _containers.RepeatedCompositeFieldContainer[SignedKeySetChange]
    caller_key: bytes
    def __init__(self, account: _Optional[bytes] = ..., sequence: _Optional[int] = ..., keys: _Optional[_Iterable[_Union[AccountKey, _Mapping]]] = ..., removed: _Optional[_Iterable[_Union[RemovedKey, _Mapping]]] = ..., changes: _Optional[_Iterable[_Union[SignedKeySetChange, _Mapping]]] = ..., caller_key: _Optional[bytes] = ...) -> None: ...

class ChangeKeySetRequest(_message.Message):
    __slots__ = ("change",)
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    change: SignedKeySetChange
    def __init__(self, change: _Optional[_Union[SignedKeySetChange, _Mapping]] = ...) -> None: ...

class ChangeKeySetResponse(_message.Message):
    __slots__ = ("key_set", "licences_revoked")
    KEY_SET_FIELD_NUMBER: _ClassVar[int]
    LICENCES_REVOKED_FIELD_NUMBER: _ClassVar[int]
    key_set: GetKeySetResponse
    licences_revoked: int
    def __init__(self, key_set: _Optional[_Union[GetKeySetResponse, _Mapping]] = ..., licences_revoked: _Optional[int] = ...) -> None: ...

class StartPairingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StartPairingResponse(_message.Message):
    __slots__ = ("code", "expires_at")
    CODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    code: str
    expires_at: int
    def __init__(self, code: _Optional[str] = ..., expires_at: _Optional[int] = ...) -> None: ...

class JoinPairingRequest(_message.Message):
    __slots__ = ("code", "key")
    CODE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    code: str
    key: AccountKey
    def __init__(self, code: _Optional[str] = ..., key: _Optional[_Union[AccountKey, _Mapping]] = ...) -> None: ...

class JoinPairingResponse(_message.Message):
    __slots__ = ("account", "expires_at", "joined")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    JOINED_FIELD_NUMBER: _ClassVar[int]
    account: bytes
    expires_at: int
    joined: bool
    def __init__(self, account: _Optional[bytes] = ..., expires_at: _Optional[int] = ..., joined: _Optional[bool] = ...) -> None: ...

class GetPairingRequest(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class GetPairingResponse(_message.Message):
    __slots__ = ("key", "expires_at", "sealed_secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SEALED_SECRET_FIELD_NUMBER: _ClassVar[int]
    key: AccountKey
    expires_at: int
    sealed_secret: bytes
    def __init__(self, key: _Optional[_Union[AccountKey, _Mapping]] = ..., expires_at: _Optional[int] = ..., sealed_secret: _Optional[bytes] = ...) -> None: ...

class SealPairingRequest(_message.Message):
    __slots__ = ("code", "sealed_secret")
    CODE_FIELD_NUMBER: _ClassVar[int]
    SEALED_SECRET_FIELD_NUMBER: _ClassVar[int]
    code: str
    sealed_secret: bytes
    def __init__(self, code: _Optional[str] = ..., sealed_secret: _Optional[bytes] = ...) -> None: ...

class SealPairingResponse(_message.Message):
    __slots__ = ("expires_at",)
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    expires_at: int
    def __init__(self, expires_at: _Optional[int] = ...) -> None: ...

class ListConsentsRequest(_message.Message):
    __slots__ = ("public_key", "since")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    since: int
    def __init__(self, public_key: _Optional[bytes] = ..., since: _Optional[int] = ...) -> None: ...

class ListConsentsResponse(_message.Message):
    __slots__ = ("licences", "rules", "truncated")
    LICENCES_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    licences: _containers.RepeatedCompositeFieldContainer[_records_pb2.LicenceRecord]
    rules: _containers.RepeatedCompositeFieldContainer[_records_pb2.StandingRuleRecord]
    truncated: bool
    def __init__(self, licences: _Optional[_Iterable[_Union[_records_pb2.LicenceRecord, _Mapping]]] = ..., rules: _Optional[_Iterable[_Union[_records_pb2.StandingRuleRecord, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class GetLogKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetLogKeyResponse(_message.Message):
    __slots__ = ("log_key", "entries")
    LOG_KEY_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    log_key: bytes
    entries: int
    def __init__(self, log_key: _Optional[bytes] = ..., entries: _Optional[int] = ...) -> None: ...
