"""The rebuild benchmark's verdict: the rate that makes 10M events in 15 minutes, flat memory,
and every archived event and lead back in the read model, or the figure that missed is named;
and the events it archives are whole journeys, each lead's in order."""

from itertools import islice

from bench.rebuild import archived_rows, misses
from shared.events import Envelope

MET = {
    "events": 1_000_000,
    "leads": 151_000,
    "replayed": 1_000_000,
    "rebuild_seconds": 80.0,
    "events_per_s": 12_500.0,
    "projected_10m_seconds": 800,
    "leads_in_funnel": 151_000,
    "peak_rss_mb": 120.0,
}


def test_a_rebuild_on_target_misses_nothing() -> None:
    assert misses(MET) == []


def test_a_slow_rebuild_names_its_rate_and_the_projected_time() -> None:
    slow = MET | {"events_per_s": 1_738.0, "projected_10m_seconds": 5_755}
    assert misses(slow) == ["rebuild 1,738 events/s < 11,111 (10M in 5,755 s, target 900 s: 6.4x)"]


def test_leads_missing_from_the_read_model_are_named() -> None:
    found = misses(MET | {"leads_in_funnel": 150_000})
    assert found == ["replayed 1,000,000 of 1,000,000; the funnel shows 150000 leads of 151,000"]


def test_the_archive_holds_whole_journeys_in_order() -> None:
    rows = list(islice(archived_rows(200), 200))
    events = [Envelope.from_bytes(value) for _, _, _, value in rows]
    assert [e.id for e in events] == [event_id for event_id, _, _, _ in rows]
    leads = {e.lead_id for e in events}
    assert len(leads) > 20
    first = {}
    for event in events:
        first.setdefault(event.lead_id, event.type)
    assert set(first.values()) == {"lead.captured"}, "each journey starts with its capture"
