"""CLI: python -m services.ingest serve | migrate."""

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from shared.cli import service_cli

service_cli("ingest", IngestSettings, create_app)()
