"""The soak's verdict: flat memory and latency after the warm-up, every lead answered and every
hot lead delivered, or the figure that missed is named."""

from bench.soak import Minute, verdict


def minutes(rss: list[float], latency: list[float], delivered_last: int = 10) -> list[Minute]:
    rows = []
    for i, (mb, ms) in enumerate(zip(rss, latency, strict=True), start=1):
        delivered = delivered_last if i == len(rss) else 10
        rows.append(
            Minute(i, {"nurture": mb}, {"nurture": 20.0}, ms, ms, {202: 30}, 10, delivered, [ms] * delivered)
        )
    return rows


def test_a_flat_run_misses_nothing() -> None:
    lines, missed = verdict(minutes([150] * 10, [40.0] * 10))
    assert missed == []
    assert any("300/300 leads answered 202, 100/100 hot leads delivered" in line for line in lines)


def test_growing_memory_after_the_warm_up_is_named() -> None:
    # Warm-up growth (minutes 1-2) is allowed; 150 -> 170 MB afterwards is +13%.
    _, missed = verdict(minutes([100, 140, 150, 152, 155, 158, 161, 164, 167, 170], [40.0] * 10))
    assert len(missed) == 1 and missed[0].startswith("nurture RSS 150 → 170 MB (+13.3%)")


def test_latency_that_creeps_up_is_named() -> None:
    _, missed = verdict(minutes([150] * 10, [40, 40, 40, 40, 40, 50, 60, 70, 80, 90]))
    assert len(missed) == 1 and "p99 grew" in missed[0]


def test_a_hot_lead_never_delivered_is_named() -> None:
    _, missed = verdict(minutes([150] * 10, [40.0] * 10, delivered_last=9))
    assert missed == ["1 hot leads not delivered"]
