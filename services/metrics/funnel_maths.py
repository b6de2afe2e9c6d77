"""The funnel's arithmetic, pure: leads reaching each stage, conversions and drop-off."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from services.metrics.models import FUNNEL_STAGES
from services.metrics.schemas import FunnelStage
from shared.http import InvalidInput

# Every lead captured is at least a suspect (only looked around): DOMAIN.md's "1000 saw" (000:87).
# Not a stage the read model ranks (`furthest_stage`): asked for, it counts every lead.
SUSPECT = "suspect"
CHOOSABLE = (SUSPECT, *FUNNEL_STAGES)


@dataclass
class Tally:
    """Leads counted: in all, by the furthest stage reached, by current stage and by temperature."""

    total: int = 0
    reached: Counter[int] = field(default_factory=Counter)  # furthest stage index → leads
    by_stage: Counter[str] = field(default_factory=Counter)
    by_temperature: Counter[str] = field(default_factory=Counter)

    def add(self, other: "Tally") -> None:
        self.total += other.total
        self.reached.update(other.reached)
        self.by_stage.update(other.by_stage)
        self.by_temperature.update(other.by_temperature)

    def count_reaching(self, stage: str) -> int:
        if stage == SUSPECT:
            return self.total
        index = FUNNEL_STAGES.index(stage)
        return sum(n for furthest, n in self.reached.items() if furthest >= index)


def parse_stages(text: str | None) -> list[str]:
    if text is None:
        return list(FUNNEL_STAGES)
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in CHOOSABLE]
    if unknown or not chosen:
        raise InvalidInput([("stages", f"choose from {', '.join(CHOOSABLE)}")])
    return sorted(set(chosen), key=CHOOSABLE.index)


def figures(stages: list[str], tally: Tally, days: dict[str, float]) -> dict[str, Any]:
    counts = [tally.count_reaching(stage) for stage in stages]
    result = []
    for index, stage in enumerate(stages):
        previous = counts[index - 1] if index else None
        following = counts[index + 1] if index + 1 < len(counts) else None
        result.append(
            FunnelStage(
                stage=stage,
                count=counts[index],
                conversion_from_previous=_ratio(counts[index], previous) if index else None,
                drop_off=counts[index] - following if following is not None else None,
                median_days_in_stage=round(days[stage], 2) if stage in days else None,
            )
        )
    return {
        "total": tally.total,
        "stages": result,
        "overall_conversion": _ratio(counts[-1], counts[0]) if counts else None,
    }


def _ratio(part: int, whole: int | None) -> float | None:
    return round(part / whole, 4) if whole else None
