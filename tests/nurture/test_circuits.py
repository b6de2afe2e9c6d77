"""What a batch of outcomes from one receiver does to its circuit (pure)."""

from services.nurture.webhook_circuits import CircuitChange, circuit_change


def test_failures_alone_add_to_the_count() -> None:
    assert circuit_change([True, True, True]) == CircuitChange(restart=False, failures=3)


def test_a_success_restarts_the_count_from_the_failures_after_it() -> None:
    assert circuit_change([True, True, False, True]) == CircuitChange(restart=True, failures=1)


def test_a_last_success_closes_the_circuit() -> None:
    assert circuit_change([True, False]) == CircuitChange(restart=True, failures=0)
    assert circuit_change([False]) == CircuitChange(restart=True, failures=0)


def test_only_the_failures_after_the_last_success_count() -> None:
    assert circuit_change([False, True, False, True, True]) == CircuitChange(restart=True, failures=2)
