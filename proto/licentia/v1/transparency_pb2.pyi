from licentia.v1 import accounts_pb2 as _accounts_pb2
from licentia.v1 import licences_pb2 as _licences_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogEntry(_message.Message):
    __slots__ = ("licence", "revocation", "issuer_key", "key_set_change", "sealed", "account_erasure")
    LICENCE_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_FIELD_NUMBER: _ClassVar[int]
    ISSUER_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_SET_CHANGE_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ERASURE_FIELD_NUMBER: _ClassVar[int]
    licence: str
    revocation: LoggedRevocation
    issuer_key: LoggedIssuerKey
    key_set_change: _accounts_pb2.SignedKeySetChange
    sealed: SealedEntry
    account_erasure: LoggedAccountErasure
    def __init__(self, licence: _Optional[str] = ..., revocation: _Optional[_Union[LoggedRevocation, _Mapping]] = ..., issuer_key: _Optional[_Union[LoggedIssuerKey, _Mapping]] = ..., key_set_change: _Optional[_Union[_accounts_pb2.SignedKeySetChange, _Mapping]] = ..., sealed: _Optional[_Union[SealedEntry, _Mapping]] = ..., account_erasure: _Optional[_Union[LoggedAccountErasure, _Mapping]] = ...) -> None: ...

class SealedEntry(_message.Message):
    __slots__ = ("tag", "commitment", "box")
    TAG_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    tag: bytes
    commitment: bytes
    box: bytes
    def __init__(self, tag: _Optional[bytes] = ..., commitment: _Optional[bytes] = ..., box: _Optional[bytes] = ...) -> None: ...

class LoggedAccountErasure(_message.Message):
    __slots__ = ("erased_at", "request")
    ERASED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    erased_at: int
    request: SignedCall
    def __init__(self, erased_at: _Optional[int] = ..., request: _Optional[_Union[SignedCall, _Mapping]] = ...) -> None: ...

class LoggedRevocation(_message.Message):
    __slots__ = ("licence_id", "revoked_at", "cause", "request")
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    licence_id: bytes
    revoked_at: int
    cause: _licences_pb2.TerminationCause
    request: SignedCall
    def __init__(self, licence_id: _Optional[bytes] = ..., revoked_at: _Optional[int] = ..., cause: _Optional[_Union[_licences_pb2.TerminationCause, str]] = ..., request: _Optional[_Union[SignedCall, _Mapping]] = ...) -> None: ...

class SignedCall(_message.Message):
    __slots__ = ("method", "body", "key", "timestamp", "nonce", "signature")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    method: str
    body: bytes
    key: bytes
    timestamp: int
    nonce: bytes
    signature: bytes
    def __init__(self, method: _Optional[str] = ..., body: _Optional[bytes] = ..., key: _Optional[bytes] = ..., timestamp: _Optional[int] = ..., nonce: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class LoggedIssuerKey(_message.Message):
    __slots__ = ("key_id", "public_key", "not_before", "not_after", "withdrawn")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    key_id: bytes
    public_key: bytes
    not_before: int
    not_after: int
    withdrawn: bool
    def __init__(self, key_id: _Optional[bytes] = ..., public_key: _Optional[bytes] = ..., not_before: _Optional[int] = ..., not_after: _Optional[int] = ..., withdrawn: _Optional[bool] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint", "verifier_key")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_KEY_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    verifier_key: str
    def __init__(self, checkpoint: _Optional[str] = ..., verifier_key: _Optional[str] = ...) -> None: ...

class GetEntriesRequest(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class GetEntriesResponse(_message.Message):
    __slots__ = ("index", "entry", "appended_at")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    APPENDED_AT_FIELD_NUMBER: _ClassVar[int]
    index: int
    entry: bytes
    appended_at: int
    def __init__(self, index: _Optional[int] = ..., entry: _Optional[bytes] = ..., appended_at: _Optional[int] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("index", "licence_id", "tree_size")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    index: int
    licence_id: bytes
    tree_size: int
    def __init__(self, index: _Optional[int] = ..., licence_id: _Optional[bytes] = ..., tree_size: _Optional[int] = ...) -> None: ...

class GetInclusionProofResponse(_message.Message):
    __slots__ = ("index", "tree_size", "proof", "entry")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    index: int
    tree_size: int
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    entry: bytes
    def __init__(self, index: _Optional[int] = ..., tree_size: _Optional[int] = ..., proof: _Optional[_Iterable[bytes]] = ..., entry: _Optional[bytes] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("old_size", "new_size")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_size: int
    def __init__(self, old_size: _Optional[int] = ..., new_size: _Optional[int] = ...) -> None: ...

class GetConsistencyProofResponse(_message.Message):
    __slots__ = ("proof",)
    PROOF_FIELD_NUMBER: _ClassVar[int]
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, proof: _Optional[_Iterable[bytes]] = ...) -> None: ...
