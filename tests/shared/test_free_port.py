"""The ports tests and benchmarks give a stack: below the range outgoing connections take their
local ports from, so a connection to PostgreSQL or the broker cannot take one before the server
meant for it binds it (seen in make test: "address already in use" for scoring's port)."""

import pytest

from shared.embedded import LOCAL_PORT_RANGE, LOWEST_CHOSEN, free_port


@pytest.mark.skipif(not LOCAL_PORT_RANGE.exists(), reason="Linux tells its range in /proc")
def test_a_free_port_is_below_the_range_outgoing_connections_take_theirs_from() -> None:
    ephemeral_from = int(LOCAL_PORT_RANGE.read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert all(LOWEST_CHOSEN <= port < ephemeral_from for port in ports), ports
    assert len(set(ports)) == len(ports), "never the same port twice"
