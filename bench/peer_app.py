"""The peer: what a team would write in an afternoon with the same libraries. Validate with
pydantic (EmailStr), look the person up by email with SQLModel, insert or merge, commit, then
await aiokafka's send_and_wait before answering. Same PostgreSQL, broker and client as ingest's
benchmark (PEER_DATABASE_URL, PEER_BOOTSTRAP)."""

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from pydantic import BaseModel, EmailStr
from sqlalchemy import Column, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession


class PeerLead(SQLModel, table=True):
    __tablename__ = "peer_leads"
    __table_args__ = {"schema": "peer"}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(index=True, unique=True)
    phone: str | None = None
    first_name: str | None = None
    company: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class LeadIn(BaseModel):
    email: EmailStr
    phone: str | None = None
    first_name: str | None = None
    company: str | None = None
    timeframe: str | None = None
    utm: dict[str, str] = {}


engine = create_async_engine(os.environ["PEER_DATABASE_URL"], pool_size=10)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE SCHEMA IF NOT EXISTS peer"))
        await connection.run_sync(SQLModel.metadata.create_all)
    app.state.producer = AIOKafkaProducer(bootstrap_servers=os.environ["PEER_BOOTSTRAP"])
    await app.state.producer.start()
    yield
    await app.state.producer.stop()
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.post("/v1/leads", status_code=202)
async def capture(lead: LeadIn, request: Request) -> dict[str, str]:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        found = (await session.exec(select(PeerLead).where(PeerLead.email == lead.email))).first()
        attributes = {"timeframe": lead.timeframe, "utm": lead.utm}
        if found is None:
            found = PeerLead(
                email=lead.email,
                phone=lead.phone,
                first_name=lead.first_name,
                company=lead.company,
                attributes=attributes,
            )
        else:
            found.attributes = {**found.attributes, **attributes}
            found.updated_at = datetime.now(UTC)
        session.add(found)
        await session.commit()
    event = {"type": "lead.captured", "lead_id": str(found.id), "data": lead.model_dump(mode="json")}
    await request.app.state.producer.send_and_wait(
        "peer.leads", json.dumps(event).encode(), key=str(found.id).encode()
    )
    return {"lead_id": str(found.id), "status": "accepted"}
