"""The exchange's store: the :class:`Store` interface and its SQLite implementation."""

from .base import ConflictCheck, Store
from .sqlite import SqliteStore

__all__ = ["ConflictCheck", "SqliteStore", "Store"]
