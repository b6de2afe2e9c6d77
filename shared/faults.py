"""Telling an outage (retry, never dead-letter) from a bad message (retry a little, then DLQ)."""

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    ConnectionError,
    PoolTimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
)


def is_transient(error: BaseException) -> bool:
    """True when the error says a server is unreachable, not that the input is bad."""
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        return is_transient(error.orig) if error.orig is not None else False
    if isinstance(error, TRANSIENT_ERRORS):
        return True
    cause = error.__cause__
    return cause is not None and is_transient(cause)
