"""CLI: python -m services.nurture serve | hand-off | migrate."""

from services.nurture.app import create_app, create_hand_off_app
from services.nurture.config import NurtureSettings
from shared.cli import service_cli

HAND_OFF = (
    "Run only the hot-lead hand-off (its lane, the webhook dispatcher, the relay), beside a "
    "`serve` with LEADFLOW_NURTURE_HAND_OFF_APART=true.",
    create_hand_off_app,
)

service_cli("nurture", NurtureSettings, create_app, {"hand-off": HAND_OFF})()
