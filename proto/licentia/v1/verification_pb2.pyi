from licentia.v1 import licence_pb2 as _licence_pb2
from licentia.v1 import reason_pb2 as _reason_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VerifyRequest(_message.Message):
    __slots__ = ("token", "presentation", "use")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PRESENTATION_FIELD_NUMBER: _ClassVar[int]
    USE_FIELD_NUMBER: _ClassVar[int]
    token: str
    presentation: str
    use: _licence_pb2.IntendedUse
    def __init__(self, token: _Optional[str] = ..., presentation: _Optional[str] = ..., use: _Optional[_Union[_licence_pb2.IntendedUse, _Mapping]] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("allowed", "reasons", "licence_id", "uses")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reasons: _containers.RepeatedScalarFieldContainer[_reason_pb2.Reason]
    licence_id: bytes
    uses: int
    def __init__(self, allowed: _Optional[bool] = ..., reasons: _Optional[_Iterable[_Union[_reason_pb2.Reason, str]]] = ..., licence_id: _Optional[bytes] = ..., uses: _Optional[int] = ...) -> None: ...

class ReportUseRequest(_message.Message):
    __slots__ = ("report_id", "token", "presentation", "use")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PRESENTATION_FIELD_NUMBER: _ClassVar[int]
    USE_FIELD_NUMBER: _ClassVar[int]
    report_id: bytes
    token: str
    presentation: str
    use: _licence_pb2.IntendedUse
    def __init__(self, report_id: _Optional[bytes] = ..., token: _Optional[str] = ..., presentation: _Optional[str] = ..., use: _Optional[_Union[_licence_pb2.IntendedUse, _Mapping]] = ...) -> None: ...

class ReportUseResponse(_message.Message):
    __slots__ = ("licence_id", "uses", "max_uses", "recorded_at")
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    licence_id: bytes
    uses: int
    max_uses: int
    recorded_at: int
    def __init__(self, licence_id: _Optional[bytes] = ..., uses: _Optional[int] = ..., max_uses: _Optional[int] = ..., recorded_at: _Optional[int] = ...) -> None: ...

class CheckAssetDigestsRequest(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, sha256: _Optional[_Iterable[bytes]] = ...) -> None: ...

class CheckAssetDigestsResponse(_message.Message):
    __slots__ = ("declared",)
    DECLARED_FIELD_NUMBER: _ClassVar[int]
    declared: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, declared: _Optional[_Iterable[bool]] = ...) -> None: ...
