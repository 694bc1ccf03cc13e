"""The exchange's store: the :class:`Store` interface and its SQLite implementation."""

from .base import AutoIssue, ConflictCheck, Store
from .sqlite import SqliteStore

__all__ = ["AutoIssue", "ConflictCheck", "SqliteStore", "Store"]
