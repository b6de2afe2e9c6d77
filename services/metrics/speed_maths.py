"""Speed-to-lead arithmetic, pure: percentiles read off the histograms kept per month."""

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from itertools import accumulate

from services.metrics.schemas import Percentiles, SpeedRow

# Speed to lead, from the histograms of speed_months (migration 0009): a bucket b holds the
# values in (GROWTH^(b-1), GROWTH^b]; its middle is within 1% of each of them.
GROWTH = 1.02
QUANTILES = (0.5, 0.9, 0.99)
Histogram = Mapping[int, int]  # bucket → leads


def bucket_middle(bucket: int) -> float:
    return 2 * GROWTH**bucket / (1 + GROWTH)


def nearest_rank(histogram: Histogram, quantiles: Sequence[float] = QUANTILES) -> list[int]:
    """The bucket of each quantile's nearest-rank value in a histogram of at least one lead:
    the first bucket whose leads, with those below it, make at least that share of all (what
    percentile_disc picks from the values themselves)."""
    buckets = sorted(histogram)
    cumulative = list(accumulate(histogram[bucket] for bucket in buckets))
    return [buckets[bisect_left(cumulative, cumulative[-1] * quantile)] for quantile in quantiles]


def speed_row(group: str | None, histograms: Mapping[str, Histogram], pending: int = 0) -> SpeedRow:
    """One group's speed figures from its histograms by measure: webhook (the hand-off),
    delivered (its webhook's arrival: the capture → webhook figure; a hand-off whose webhook
    never arrived, or arrived before metrics heard of deliveries, is in none of its buckets) and
    ack (seconds from capture), cycle (days), touches (a customer's touches before it became one; the bucket
    is the count) and sla (bucket 1: acknowledged within the SLA; bucket 0: breached with no
    hand-off, no rep matching the lead). `pending` of the leads handed off are still inside
    their SLA: SLA compliance is the share of the others met, those never handed off among
    them."""
    assigned = sum(histograms.get("webhook", {}).values())
    converted = sum(histograms.get("cycle", {}).values())
    touches = sum(bucket * leads for bucket, leads in histograms.get("touches", {}).items())
    in_time = histograms.get("sla", {}).get(1, 0)
    decided = assigned + histograms.get("sla", {}).get(0, 0) - pending
    return SpeedRow(
        group=group,
        hand_offs=assigned,
        to_first_webhook_seconds=_percentiles(histograms.get("delivered", {})),
        to_acknowledgement_seconds=_percentiles(histograms.get("ack", {})),
        sla_compliance=round(in_time / decided, 4) if decided > 0 else None,
        sla_pending=pending,
        touches_to_conversion=round(touches / converted, 2) if converted else None,
        sales_cycle_days=_percentiles(histograms.get("cycle", {})),
    )


def every_rep(rows: Sequence[SpeedRow], names: Mapping[str, str]) -> list[SpeedRow]:
    """The rows by rep named (`names`: every rep known, by id), and a row of no hand-offs and no
    timings for each rep named who has none in the period (a manager sees who got nothing). The
    reps handed something first, in the order given; then those handed nothing, by name; the
    leads with no rep (group null) last."""
    shown = {row.group for row in rows}
    idle = [speed_row(rep, {}) for rep in names if rep not in shown]
    named = [row.model_copy(update={"name": names.get(row.group or "")}) for row in [*rows, *idle]]
    return sorted(named, key=lambda row: (row.group is None, row.hand_offs == 0, _idle_order(row)))


def _idle_order(row: SpeedRow) -> tuple[str, str]:
    """Those handed nothing by name (then id); the others keep their order (sorted is stable)."""
    return (row.name or "", row.group or "") if row.hand_offs == 0 else ("", "")


def _percentiles(histogram: Histogram) -> Percentiles:
    count = sum(histogram.values())
    if not count:
        return Percentiles(count=0, p50=None, p90=None, p99=None)
    p50, p90, p99 = (round(bucket_middle(bucket), 3) for bucket in nearest_rank(histogram))
    return Percentiles(count=count, p50=p50, p90=p90, p99=p99)
