"""The platform's SDK: register, verify inline with a shared nonce store, report uses."""

from ..channel import ExchangeError
from ..verifier import Verifier
from ..verifier.nonces import PostgresNonceStore, SqliteNonceStore, open_nonce_store
from .sdk import Platform, PlatformProfile, UseReport

__all__ = [
    "ExchangeError",
    "Platform",
    "PlatformProfile",
    "PostgresNonceStore",
    "SqliteNonceStore",
    "UseReport",
    "Verifier",
    "open_nonce_store",
]
