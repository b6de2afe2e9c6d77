"""CLI: python -m services.nurture serve | migrate."""

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from shared.cli import service_cli

service_cli("nurture", NurtureSettings, create_app)()
