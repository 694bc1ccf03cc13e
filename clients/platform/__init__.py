"""The platform's SDK: register, verify inline with a shared nonce store, report uses,
check files and uploads."""

from ..channel import ExchangeError
from ..verifier import Verifier
from ..verifier.files import FileCheck
from ..verifier.nonces import PostgresNonceStore, SqliteNonceStore, open_nonce_store
from .sdk import Platform, PlatformProfile, UploadCheck, UseReport

__all__ = [
    "ExchangeError",
    "FileCheck",
    "Platform",
    "PlatformProfile",
    "PostgresNonceStore",
    "SqliteNonceStore",
    "UploadCheck",
    "UseReport",
    "Verifier",
    "open_nonce_store",
]
