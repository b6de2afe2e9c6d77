"""JSON columns take a document already encoded (`EncodedJson`) as it is, and anything else
encoded once: both read back as the same object, by an UPSERT and by a deferred COPY."""

import uuid

from sqlalchemy import Column, MetaData, Table, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import Database, EncodedJson, defer_insert, upsert
from tests.conftest import Servers

TABLE = Table(
    "json_roundtrip",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("doc", JSONB, nullable=False),
)


async def test_encoded_and_plain_documents_are_stored_as_the_same_object(servers: Servers) -> None:
    db = Database(servers.database_url, "public")
    document = {"name": "Аружан", "visits": [1, 2], "nested": {"ok": True}}
    encoded = EncodedJson('{"name": "Аружан", "visits": [1, 2], "nested": {"ok": true}}')
    ids = [uuid.uuid4() for _ in range(4)]
    try:
        async with db.transaction() as session:
            await session.execute(
                text("CREATE TABLE IF NOT EXISTS json_roundtrip (id uuid PRIMARY KEY, doc jsonb NOT NULL)")
            )
            await upsert(
                session, TABLE, ["id"], [{"id": ids[0], "doc": encoded}, {"id": ids[1], "doc": document}]
            )
            defer_insert(session, TABLE, {"id": ids[2], "doc": encoded})
            defer_insert(session, TABLE, {"id": ids[3], "doc": document})
        async with db.transaction() as session:
            rows = await session.execute(
                text("SELECT id, jsonb_typeof(doc) AS kind, doc FROM json_roundtrip WHERE id = ANY(:ids)"),
                {"ids": ids},
            )
            stored = {row.id: (row.kind, row.doc) for row in rows}
    finally:
        await db.dispose()
    assert [stored[i] for i in ids] == [("object", document)] * 4
