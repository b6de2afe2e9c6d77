"""The pipeline benchmark's hop breakdown (pure): each hop's duration from a hot lead's moments,
only where both ends were seen."""

from bench.hops import HOPS, Journey, hop_times


def test_each_hop_is_the_time_from_the_moment_before() -> None:
    journey = Journey(
        posted=100.0,
        captured=100.004,
        published=100.006,
        scoring=100.011,
        classified=100.020,
        republished=100.023,
        assigned=100.039,
        sent=100.054,
        received=100.055,
    )
    times = hop_times([journey])
    got = {hop: round(times[hop][0], 3) for hop in (*HOPS, "total")}
    assert got == {
        "captured": 4.0,
        "published": 2.0,
        "scoring": 5.0,
        "classified": 9.0,
        "republished": 3.0,
        "assigned": 16.0,
        "sent": 15.0,
        "received": 1.0,
        "total": 55.0,
    }


def test_a_moment_not_seen_leaves_out_the_hops_on_either_side_of_it() -> None:
    journey = Journey(posted=1.0, captured=1.002, published=None, scoring=1.010, received=1.050)
    times = hop_times([journey])
    assert [round(t, 6) for t in times["captured"]] == [2.0]
    assert times["published"] == [] and times["scoring"] == [] and times["assigned"] == []
    assert [round(t, 6) for t in times["total"]] == [50.0]
