"""Async engine and transactions for one service schema (set as the connection's search_path)."""

from shared.db.arrays import among
from shared.db.database import CommitUnknown, Database, DirectConnection
from shared.db.deferred import (
    COPY_FROM_ROWS,
    defer_insert,
    defer_notify,
    defer_update,
    defer_upsert,
    hand_after_commit,
    kept,
    write_deferred,
)
from shared.db.driver import driver_connection, execute_compiled_once, upsert
from shared.db.engine import EncodedJson, create_engine, yield_alike

__all__ = [
    "COPY_FROM_ROWS",
    "CommitUnknown",
    "Database",
    "DirectConnection",
    "EncodedJson",
    "among",
    "create_engine",
    "defer_insert",
    "defer_notify",
    "defer_update",
    "defer_upsert",
    "driver_connection",
    "execute_compiled_once",
    "hand_after_commit",
    "kept",
    "upsert",
    "write_deferred",
    "yield_alike",
]
