"""Which consumers fetch with the short wait: those on a hot lead's way to its rep (scoring's,
nurture's hand-off lane); the others (metrics, nurture's follow-up) with the background wait.
Pure: the apps are built, nothing is started."""

from typing import Any

from services.metrics.app import create_app as metrics_app
from services.metrics.config import MetricsSettings
from services.nurture.app import create_app as nurture_app
from services.nurture.config import NurtureSettings
from services.scoring.app import create_app as scoring_app
from services.scoring.config import ScoringSettings

PLACES = {
    "database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
    "kafka_bootstrap": "127.0.0.1:1",
    "env": "test",
    "kafka_fetch_wait_ms": 7,
    "kafka_background_fetch_wait_ms": 300,
}


def waits(app: Any) -> dict[str, int]:
    return {runner.group: runner.fetch_wait_ms for runner in app.state.runtime.consumers}


def test_the_hot_path_fetches_with_the_short_wait_and_the_rest_with_the_long_one() -> None:
    found = (
        waits(scoring_app(ScoringSettings(**PLACES)))
        | waits(nurture_app(NurtureSettings(**PLACES)))
        | waits(metrics_app(MetricsSettings(**PLACES)))
    )
    assert found == {"scoring": 7, "nurture-lane": 7, "nurture": 300, "metrics": 300}
