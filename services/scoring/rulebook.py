"""The versioned rules in the database: the active version is the newest; each accepted
change is a new number."""

import time
from collections.abc import Callable

from services.scoring.models import RulesVersion
from services.scoring.rules import Rules, default_rules_text
from shared.documents import Active, VersionedDocuments

ActiveRules = Active[Rules]


class RuleBook(VersionedDocuments[Rules]):
    def __init__(
        self, initial_source: str | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        table = RulesVersion.__table__  # type: ignore[attr-defined]
        again = "; POST /v1/rescore decides every lead again under it"
        super().__init__(table, "rules", Rules, initial_source or default_rules_text(), clock, again)
