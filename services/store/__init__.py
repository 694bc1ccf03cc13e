"""The exchange's store: the :class:`Store` interface, its SQLite implementation (the embedded
default) and its PostgreSQL implementation (:mod:`.postgres`, for several replicas)."""

from __future__ import annotations

from pathlib import Path

from .base import StaleVerdict, Store
from .sqlite import SqliteStore

__all__ = ["SqliteStore", "StaleVerdict", "Store", "open_store"]

#: The URL schemes :func:`open_store` takes for PostgreSQL.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(db: str, default_path: Path, *, read_only: bool = False) -> Store:
    """The store a ``--db`` URL names: ``sqlite:///PATH`` (``sqlite:////abs/path`` for an
    absolute path), ``postgresql://…`` (libpq's URL, e.g. ``postgresql://user@host/db``), or
    ``""`` for the SQLite file ``default_path`` (the data directory's). ValueError for any
    other URL, or a database that cannot be reached."""
    if not db:
        return SqliteStore(default_path, read_only=read_only)
    if db.startswith("sqlite:///"):
        path = db.removeprefix("sqlite:///")
        if not path:
            raise ValueError("--db sqlite:///PATH needs a path")
        return SqliteStore(Path(path), read_only=read_only)
    if db.startswith(POSTGRES_SCHEMES):
        import psycopg  # noqa: PLC0415 (psycopg only when used)

        from .postgres import PostgresStore  # noqa: PLC0415

        try:
            return PostgresStore(db, read_only=read_only)
        except psycopg.OperationalError as e:  # unreachable, refused, no such database
            raise ValueError(f"cannot open the database: {e}".strip()) from e
    raise ValueError("--db is sqlite:///PATH or postgresql://…")
