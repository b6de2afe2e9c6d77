"""Ingest settings (LEADFLOW_* plus LEADFLOW_INGEST_PORT)."""

from pydantic import Field

from shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    port: int = Field(8001, validation_alias="LEADFLOW_INGEST_PORT")
    default_phone_region: str = "KZ"
