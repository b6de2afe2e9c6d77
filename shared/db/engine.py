"""The pool of a service's schema: its connections' settings, JSON encoding, lost connections."""

import json
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.faults import LOST_CONNECTION_ERRORS, caused_by

log = logging.getLogger(__package__)


def server_settings(schema: str) -> dict[str, str]:
    """Connections see `schema` first, so table names stay unqualified."""
    return {"search_path": schema, "application_name": f"leadflow-{schema}"}


class EncodedJson(str):
    """A JSON document already encoded (by pydantic's `model_dump_json`, say): written to a
    JSON column as it is, not encoded again."""


def _encode_json(value: Any) -> str:
    return value if isinstance(value, EncodedJson) else json.dumps(value)


def json_text(value: Any) -> str | None:
    return None if value is None else _encode_json(value)


def create_engine(url: str, schema: str, pool_size: int = 10, durable: bool = True) -> AsyncEngine:
    """The pool of a service's schema. Not `durable`: its connections' commits return before
    their records reach the disk (see `Database.transaction`)."""
    settings = server_settings(schema) | ({} if durable else {"synchronous_commit": "off"})
    engine = create_async_engine(
        url,
        json_serializer=_encode_json,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        hide_parameters=True,  # an error's text never quotes a row's values (emails, phones)
        connect_args={"timeout": 5, "command_timeout": 30, "server_settings": settings},
    )
    event.listen(engine.sync_engine, "handle_error", _discard_lost_connections)
    event.listen(engine.sync_engine, "connect", _backend_yields_alike)
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed_connections)
    return engine


def _refuse_closed_connections(dbapi_connection: Any, _record: object, _proxy: object) -> None:
    """A pooled connection whose server went away (a restart, a killed backend) is replaced as
    it is drawn. Statements run on the asyncpg connection itself (`Database.read`,
    `driver_connection`) fail outside SQLAlchemy, which then never learns it was lost: pooled
    again, it failed every unit of work that drew it, for good (nurture's lane looped on
    "connection is closed" after PostgreSQL was killed). No round trip: asyncpg knows."""
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this connection")


def _backend_yields_alike(dbapi_connection: Any, _: object) -> None:
    yield_alike(dbapi_connection.driver_connection.get_server_pid())


def yield_alike(backend_pid: int) -> None:
    """A process niced to yield the CPU (`leadflow dev`'s background parts: metrics, nurture's
    follow-up) has its PostgreSQL backend yield alike: the backend's work is its work, and at
    nice 0 it competed with a hot lead's. Only a backend of a PostgreSQL started beside this
    process, by the same parent (the dev stack's own), is touched: a server elsewhere, or in a
    container whose process ids mean other processes here, is left alone."""
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness <= 0:
        return
    try:
        postmaster = _parent_of(backend_pid)
        if _parent_of(postmaster) != os.getppid() or Path(_command_of(postmaster)).name != "postgres":
            return
        if os.getpriority(os.PRIO_PROCESS, backend_pid) < niceness:
            os.setpriority(os.PRIO_PROCESS, backend_pid, niceness)
    except (OSError, ValueError) as error:  # not Linux, gone, not ours to change
        log.debug("backend %d keeps its priority: %r", backend_pid, error)


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])  # after the name: state, then ppid


def _command_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")


def _discard_lost_connections(context: Any) -> None:
    """SQLAlchemy counts an asyncpg connection as lost only once its socket is closed. When
    the server shuts down mid-statement the error can arrive first, leaving a connection
    whose protocol is stuck mid-operation; pooled again, it would fail every later
    request. Such connections (and the pool's older ones) are discarded instead."""
    if caused_by(context.original_exception, LOST_CONNECTION_ERRORS):
        context.is_disconnect = True
