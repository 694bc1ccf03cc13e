from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PostingKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POSTING_KIND_UNSPECIFIED: _ClassVar[PostingKind]
    POSTING_KIND_DEPOSIT: _ClassVar[PostingKind]
    POSTING_KIND_ESCROW: _ClassVar[PostingKind]
    POSTING_KIND_ACCRUAL: _ClassVar[PostingKind]
    POSTING_KIND_USE: _ClassVar[PostingKind]
    POSTING_KIND_REFUND: _ClassVar[PostingKind]
    POSTING_KIND_WITHDRAWAL: _ClassVar[PostingKind]

class PayoutDestinationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYOUT_DESTINATION_STATE_UNSPECIFIED: _ClassVar[PayoutDestinationState]
    PAYOUT_DESTINATION_STATE_PENDING: _ClassVar[PayoutDestinationState]
    PAYOUT_DESTINATION_STATE_CONFIRMED: _ClassVar[PayoutDestinationState]
    PAYOUT_DESTINATION_STATE_CANCELLED: _ClassVar[PayoutDestinationState]
POSTING_KIND_UNSPECIFIED: PostingKind
POSTING_KIND_DEPOSIT: PostingKind
POSTING_KIND_ESCROW: PostingKind
POSTING_KIND_ACCRUAL: PostingKind
POSTING_KIND_USE: PostingKind
POSTING_KIND_REFUND: PostingKind
POSTING_KIND_WITHDRAWAL: PostingKind
PAYOUT_DESTINATION_STATE_UNSPECIFIED: PayoutDestinationState
PAYOUT_DESTINATION_STATE_PENDING: PayoutDestinationState
PAYOUT_DESTINATION_STATE_CONFIRMED: PayoutDestinationState
PAYOUT_DESTINATION_STATE_CANCELLED: PayoutDestinationState

class DepositRequest(_message.Message):
    __slots__ = ("advertiser_key", "amount_minor", "reference")
    ADVERTISER_KEY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    advertiser_key: bytes
    amount_minor: int
    reference: str
    def __init__(self, advertiser_key: _Optional[bytes] = ..., amount_minor: _Optional[int] = ..., reference: _Optional[str] = ...) -> None: ...

class DepositResponse(_message.Message):
    __slots__ = ("line", "balance_minor", "replayed")
    LINE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MINOR_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    line: StatementLine
    balance_minor: int
    replayed: bool
    def __init__(self, line: _Optional[_Union[StatementLine, _Mapping]] = ..., balance_minor: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...

class WithdrawRequest(_message.Message):
    __slots__ = ("amount_minor", "payout_reference", "idempotency_key")
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAYOUT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    amount_minor: int
    payout_reference: str
    idempotency_key: bytes
    def __init__(self, amount_minor: _Optional[int] = ..., payout_reference: _Optional[str] = ..., idempotency_key: _Optional[bytes] = ...) -> None: ...

class WithdrawResponse(_message.Message):
    __slots__ = ("line", "balance_minor", "replayed")
    LINE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MINOR_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    line: StatementLine
    balance_minor: int
    replayed: bool
    def __init__(self, line: _Optional[_Union[StatementLine, _Mapping]] = ..., balance_minor: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetStatementRequest(_message.Message):
    __slots__ = ("page_size", "before_posting")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_POSTING_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    before_posting: int
    def __init__(self, page_size: _Optional[int] = ..., before_posting: _Optional[int] = ...) -> None: ...

class GetStatementResponse(_message.Message):
    __slots__ = ("currency", "available_minor", "pending_minor", "total_minor", "lines", "next_before_posting", "reserved_minor", "reserved_requests")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    PENDING_MINOR_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    NEXT_BEFORE_POSTING_FIELD_NUMBER: _ClassVar[int]
    RESERVED_MINOR_FIELD_NUMBER: _ClassVar[int]
    RESERVED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    currency: str
    available_minor: int
    pending_minor: int
    total_minor: int
    lines: _containers.RepeatedCompositeFieldContainer[StatementLine]
    next_before_posting: int
    reserved_minor: int
    reserved_requests: int
    def __init__(self, currency: _Optional[str] = ..., available_minor: _Optional[int] = ..., pending_minor: _Optional[int] = ..., total_minor: _Optional[int] = ..., lines: _Optional[_Iterable[_Union[StatementLine, _Mapping]]] = ..., next_before_posting: _Optional[int] = ..., reserved_minor: _Optional[int] = ..., reserved_requests: _Optional[int] = ...) -> None: ...

class StatementLine(_message.Message):
    __slots__ = ("posting_id", "kind", "licence_id", "at", "amount_minor", "fee_minor", "reference")
    POSTING_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LICENCE_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    FEE_MINOR_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    posting_id: int
    kind: PostingKind
    licence_id: bytes
    at: int
    amount_minor: int
    fee_minor: int
    reference: str
    def __init__(self, posting_id: _Optional[int] = ..., kind: _Optional[_Union[PostingKind, str]] = ..., licence_id: _Optional[bytes] = ..., at: _Optional[int] = ..., amount_minor: _Optional[int] = ..., fee_minor: _Optional[int] = ..., reference: _Optional[str] = ...) -> None: ...

class PayoutDestination(_message.Message):
    __slots__ = ("reference", "added_at", "usable_at", "state", "cancelled_at")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ADDED_AT_FIELD_NUMBER: _ClassVar[int]
    USABLE_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_AT_FIELD_NUMBER: _ClassVar[int]
    reference: str
    added_at: int
    usable_at: int
    state: PayoutDestinationState
    cancelled_at: int
    def __init__(self, reference: _Optional[str] = ..., added_at: _Optional[int] = ..., usable_at: _Optional[int] = ..., state: _Optional[_Union[PayoutDestinationState, str]] = ..., cancelled_at: _Optional[int] = ...) -> None: ...

class AddPayoutDestinationRequest(_message.Message):
    __slots__ = ("reference",)
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    def __init__(self, reference: _Optional[str] = ...) -> None: ...

class AddPayoutDestinationResponse(_message.Message):
    __slots__ = ("destination",)
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    destination: PayoutDestination
    def __init__(self, destination: _Optional[_Union[PayoutDestination, _Mapping]] = ...) -> None: ...

class CancelPayoutDestinationRequest(_message.Message):
    __slots__ = ("reference",)
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    def __init__(self, reference: _Optional[str] = ...) -> None: ...

class CancelPayoutDestinationResponse(_message.Message):
    __slots__ = ("destination",)
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    destination: PayoutDestination
    def __init__(self, destination: _Optional[_Union[PayoutDestination, _Mapping]] = ...) -> None: ...

class ListPayoutDestinationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPayoutDestinationsResponse(_message.Message):
    __slots__ = ("destinations", "delay_seconds")
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    destinations: _containers.RepeatedCompositeFieldContainer[PayoutDestination]
    delay_seconds: int
    def __init__(self, destinations: _Optional[_Iterable[_Union[PayoutDestination, _Mapping]]] = ..., delay_seconds: _Optional[int] = ...) -> None: ...
