"""CLI: python -m services.scoring serve | migrate."""

from services.scoring.app import create_app
from services.scoring.config import ScoringSettings
from shared.cli import service_cli

service_cli("scoring", ScoringSettings, create_app)()
