"""Telling an outage, or a transaction that only met another (retry, never dead-letter), from a
bad message (retry a little, then DLQ);
and a stop from a cancellation that only came out of something awaited."""

import asyncio

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    ConnectionError,
    PoolTimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InterfaceError,
    # The connection's protocol was left mid-operation when the server went away.
    asyncpg.InternalClientError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    # PostgreSQL failed the transaction for meeting another (a deadlock, a serialization
    # failure): the work was fine, and is done again whole. A consumer's batch that was isolated
    # message by message instead took seconds (a message that met two could be dead-lettered).
    asyncpg.TransactionRollbackError,
    # No room to write (53100), no memory, too many connections (class 53), an I/O error on the
    # server (class 58): PostgreSQL is up, but cannot take the work now. A full disk made every
    # message of a batch be taken for a bad one and dead-lettered for good (found by a review).
    asyncpg.InsufficientResourcesError,
    asyncpg.PostgresSystemError,
)


# Errors after which a database connection cannot be trusted again (see `shared.db`).
LOST_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def caused_by(error: BaseException | None, kinds: tuple[type[BaseException], ...]) -> bool:
    """True when `error` or anything in its cause chain is one of `kinds`."""
    while error is not None:
        if isinstance(error, kinds):
            return True
        error = error.__cause__
    return False


def raced_a_unique_row(error: BaseException) -> bool:
    """A find-or-create met another transaction (another replica's, an import's) that
    committed the same unique row first: done again, the work finds that row. Through the ORM
    or through the driver (rows written in bulk at commit, `shared.db.write_deferred`)."""
    return isinstance(error, IntegrityError) or caused_by(error, (asyncpg.UniqueViolationError,))


def is_transient(error: BaseException) -> bool:
    """True when the error says a server is unreachable, or that the transaction met another
    (`TRANSIENT_ERRORS`), not that the input is bad."""
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        return is_transient(error.orig) if error.orig is not None else False
    if isinstance(error, TRANSIENT_ERRORS):
        return True
    cause = error.__cause__
    return cause is not None and is_transient(cause)


def cancelled_from_outside() -> bool:
    """Whether the running task itself is being cancelled (a stop), as opposed to a
    CancelledError that came out of something it awaited (a future someone else cancelled)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def raise_hidden_stop(error: BaseException) -> None:
    """Raise the stop that `error` hides, if it hides one: the running task is being cancelled,
    and what its cancellation went through failed as it unwound (a transaction's rollback on a
    connection PostgreSQL dropped turns the CancelledError into asyncpg's InterfaceError). A
    loop that retried that failure would never stop: call this first in each `except Exception`
    of a loop that retries, or records a failure where a stop must leave things as they were."""
    if cancelled_from_outside():
        raise asyncio.CancelledError from error


def drop_traceback(error: BaseException) -> None:
    """Let go of the frames that `error`, and each error it came from, still hold. A client
    library's failure (aiohttp, aiosmtplib) leaves its frames and its error in cycles that only
    the garbage collector frees: 47-79 objects per refused connection. A provider refusing every
    send made nurture collect 35,000 of them at a time, in pauses of 40-70 ms of CPU. Call it
    once the error has been turned into what is kept of it (its text)."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__traceback__ = None
        link = link.__cause__ or link.__context__
