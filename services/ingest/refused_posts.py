"""Form posts a source refused for where they came from, told to the operator: a form that
refuses its own site's visitors (its origin written wrong in `allowed_origins`, a website
builder relaying the form from its server) loses every lead, and no visitor can tell anyone.

Each refusal is counted (`leadflow_ingest_form_posts_refused_total{source_id, reason}`) and
logged: the first of a source at once, then at most one line a minute with how many more were
refused meanwhile, so a bot's flood is one line a minute, not one a post. A line names the
source, the origins it takes and the one the post named; nothing of the visitor's."""

import logging
import time
from uuid import UUID

from prometheus_client import CollectorRegistry, Counter

from services.ingest.models import Source

log = logging.getLogger(__name__)
FOREIGN_ORIGIN = "foreign_origin"
NO_ORIGIN = "no_origin"


class RefusedPosts:
    def __init__(self, registry: CollectorRegistry, every_seconds: float = 60.0) -> None:
        self.every_seconds = every_seconds
        self.counted = Counter(
            "leadflow_ingest_form_posts_refused_total",
            "Form posts a source with allowed_origins refused for their origin (foreign_origin) or"
            " for naming none (no_origin), by source.",
            ["source_id", "reason"],
            registry=registry,
        )
        self._reported: dict[UUID, tuple[float, int]] = {}  # a source's last line, and refusals since

    def refused(self, source: Source, reason: str, origin: str | None) -> None:
        self.counted.labels(str(source.id), reason).inc()
        now = time.monotonic()
        last, since = self._reported.get(source.id, (None, 0))
        if last is not None and now - last < self.every_seconds:
            self._reported[source.id] = (last, since + 1)
            return
        self._reported[source.id] = (now, 0)
        named = (origin or "")[:200]  # as sent: a script may send anything
        came = f"came from {named}" if reason == FOREIGN_ORIGIN else "named no origin (no Origin header)"
        log.warning(
            "form post refused: source %s takes posts from %s only, this one %s"
            " (%d more refused since the last line)",
            source.id,
            ", ".join(source.allowed_origins),
            came,
            since,
        )
