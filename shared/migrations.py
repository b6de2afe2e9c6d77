"""Alembic per service schema: an env.py body, the plumbing tables, and a programmatic upgrade."""

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.db import Database
from shared.http import NotReady


class SchemaBehind(NotReady):
    """The service's schema lacks migrations this release needs: `migrate` has not run yet."""


class SchemaAhead(Exception):
    """The schema is at a revision this release does not know: a newer release migrated it."""


_UNKNOWN_REVISION = re.compile(r"Can't locate revision identified by '([^']+)'")


def upgrade(database_url: str, schema: str, migrations_dir: Path) -> None:
    """Bring `schema` to its latest revision (safe to run from several processes at once). A
    schema a newer release migrated is refused, saying so: alembic's "Can't locate revision
    identified by '0021'" told an operator who went back a release nothing they could act on."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url)
    config.attributes["schema"] = schema
    try:
        command.upgrade(config, "head")
    except CommandError as error:
        unknown = _UNKNOWN_REVISION.search(str(error))
        if unknown is None:
            raise
        head = ScriptDirectory.from_config(config).get_current_head()
        raise SchemaAhead(
            f"{schema}'s tables are at migration {unknown.group(1)}, which this release does not"
            f" know (its last is {head}): a newer Leadflow migrated this database. Run that"
            " release again, or, to go back to this one, restore the copy of the data taken"
            ' before upgrading (README "Upgrading")'
        ) from None


UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE for a table that does not exist


def schema_check(db: Database, migrations_dir: Path) -> Callable[[], Awaitable[None]]:
    """Readiness: the schema is at this release's last migration, or past it (a newer release
    migrated it, and older ones keep working on it through a rolling upgrade), never behind or
    missing. Before `migrate` had run, a new ingest was ready and answered 500s."""
    script = ScriptDirectory(str(migrations_dir))
    head = script.get_current_head()
    older = {revision.revision for revision in script.walk_revisions()} - {head}

    versions = f'SELECT version_num FROM "{db.schema}".alembic_version'  # noqa: S608 (the service's name)

    async def check() -> None:
        # Through the ORM's connection, not `db.read`'s raw one: a readiness probe is cut short
        # by its timeout (a database restarting), and SQLAlchemy drops a connection cancelled
        # mid-statement, where a raw one could go back to the pool mid-operation ("another
        # operation is in progress") and hang its next user.
        try:
            async with db.engine.connect() as connection:
                rows = (await connection.execute(sa.text(versions))).all()
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == UNDEFINED_TABLE:
                raise SchemaBehind("never migrated: run migrate") from None
            raise
        if not rows or rows[0][0] in older:
            raise SchemaBehind(f"behind this release ({head}): run migrate")

    return check


def run_env() -> None:
    """The body of every service's migrations/env.py (online mode only)."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    asyncio.run(_migrate(url, config.attributes["schema"]))


async def _migrate(url: str, schema: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(sa.text("SELECT pg_advisory_lock(hashtext(:s))"), {"s": schema})
            await connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await connection.execute(sa.text(f'SET search_path TO "{schema}"'))
            await connection.commit()
            await connection.run_sync(_run_migrations, schema)
            await connection.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:s))"), {"s": schema})
    finally:
        await engine.dispose()


def _run_migrations(connection: sa.Connection, schema: str) -> None:
    context.configure(connection=connection, version_table_schema=schema)
    with context.begin_transaction():
        context.run_migrations()


def create_outbox_table() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def create_inbox_table() -> None:
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    # BRIN: nearly free to maintain on an append-only time column, enough for the purge.
    op.create_index(
        "processed_events_processed_at", "processed_events", ["processed_at"], postgresql_using="brin"
    )


def create_relay_tables() -> None:
    """What the outbox relay keeps besides the outbox: the journal of what it published (in
    publish order, replayed when the broker loses it), how far each partition's log must reach
    after its last publish (to notice that loss), and the rows it could not publish."""
    op.add_column("outbox", sa.Column("headers", JSONB))
    op.create_table(
        "journal",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB),
        sa.Column("published_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("journal_published_at", "journal", ["published_at"], postgresql_using="brin")
    op.create_table(
        "relay_positions",
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "outbox_dead_letters",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def drop_relay_tables() -> None:
    for table in ("outbox_dead_letters", "relay_positions", "journal"):
        op.drop_table(table)
    op.drop_column("outbox", "headers")


def create_inbox_dead_letters() -> None:
    """A consumer's dead letters (`shared.consumer.dead_letters`), written with their DLQ message
    and their claim: the raw message, where it came from, what it was when it could be read, and
    why it failed; kept until an admin replays or discards it, or its lead is erased."""
    op.create_table(
        "inbox_dead_letters",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("consumer_group", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("message_offset", sa.BigInteger, nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("event_id", sa.Uuid),
        sa.Column("event_type", sa.Text),
        sa.Column("lead_id", sa.Uuid),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def drop_inbox_dead_letters() -> None:
    op.drop_table("inbox_dead_letters")


def create_tombstones() -> None:
    """Ids of erased leads (shared/tombstones.py): later events about them are dropped."""
    op.create_table(
        "tombstones",
        sa.Column("lead_id", sa.Uuid, primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def create_archive_table() -> None:
    """An inbox that keeps each message (`shared.inbox.archive_new_events`), in arrival order."""
    op.create_table(
        "event_archive",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    # BRIN: nearly free on an ever-growing column; a replay reads it in ranges of seq.
    op.create_index("event_archive_seq", "event_archive", ["seq"], postgresql_using="brin")
    # The replay under way, if any: it resumes from here after a restart.
    op.create_table(
        "archive_replay",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("next_seq", sa.BigInteger, nullable=False),
        sa.Column("until_seq", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("done", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def mark_release_versions(table: str) -> None:
    """`from_release` on a versioned document's table (`shared.documents`): whether a version is
    a release's built-in document, stored by Leadflow, or one an operator published. Version 1
    always is; a later version stored by an older release that followed its built-ins cannot
    be told from a published one, and counts as published (left alone, as before)."""
    op.add_column(table, sa.Column("from_release", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(f"UPDATE {table} SET from_release = true WHERE version = 1")  # noqa: S608 (our table)
