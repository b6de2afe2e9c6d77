"""CLI: python -m services.metrics serve | migrate."""

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared.cli import service_cli

service_cli("metrics", MetricsSettings, create_app)()
