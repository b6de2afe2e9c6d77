"""`leadflow seed`: a funnel of the DOMAIN.md shape, the same for the same seed, readable by
every report."""

import asyncio
import socket
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from typer.testing import CliRunner

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from services.metrics.seed import COLUMNS, lead_rows, seed
from shared.cli import main
from tests.conftest import Servers, running

LEADS = 4_000


def test_the_same_seed_gives_the_same_leads_and_another_seed_others() -> None:
    assert list(lead_rows(50, seed=7)) == list(lead_rows(50, seed=7))
    assert list(lead_rows(50, seed=7)) != list(lead_rows(50, seed=8))


async def test_a_seeded_funnel_has_the_domain_shape_and_every_report_reads_it(servers: Servers) -> None:
    dsn = servers.database_url.replace("+asyncpg", "")
    written: list[int] = []
    done = await seed(dsn, LEADS, seed=3, progress=written.append)
    assert written[-1] == LEADS and done.leads == LEADS and done.spend_rows > 0
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        funnel = (await client.get("/v1/funnel")).json()
        assert funnel["total"] == LEADS
        reached = {row["stage"]: row["count"] for row in funnel["stages"]}
        assert reached["mql"] / reached["lead"] == pytest.approx(0.5, abs=0.04)
        assert reached["sql"] / reached["mql"] == pytest.approx(0.4, abs=0.05)
        assert reached["customer"] == done.customers
        period = {"from": "2025-12-01", "to": "2026-12-01"}
        for path, params in [
            ("/v1/funnel", {"group_by": "channel"}),
            ("/v1/cac", {**period, "group_by": "channel", "period": "month"}),
            ("/v1/ltv", {"group_by": "channel"}),
            ("/v1/speed-to-lead", {"group_by": "rep"}),
        ]:
            response = await client.get(path, params=params)
            assert response.status_code == 200, (path, response.text)


async def test_a_seeded_funnel_has_webhooks_delivered_late_or_never_and_slas_missed(servers: Servers) -> None:
    """Speed to lead over a seed measures every figure it reports: capture → webhook counts the
    deliveries (none before, so the scale benchmark timed a report with that figure empty), and
    SLA compliance is below 1 (every hand-off was acknowledged, none breached)."""
    dsn = servers.database_url.replace("+asyncpg", "")
    await seed(dsn, LEADS, seed=5)
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in lead_rows(LEADS, seed=5)]
    handed = [row for row in rows if row["assigned_at"]]
    delivered = [row for row in handed if row["delivered_at"]]
    assert 0 < len(handed) - len(delivered) < len(handed) / 20, "a few webhooks never arrived"
    late = [row for row in delivered if row["delivered_at"] - row["assigned_at"] > timedelta(minutes=1)]
    assert late, "some arrived only on a retry"
    missed = [row for row in rows if row["breached_at"]]
    assert any(row["assigned_at"] is None for row in missed), "a lead no rep matched"
    assert all(row["rep_id"] for row in handed) and not any(
        row["rep_id"] for row in rows if not row["assigned_at"]
    )
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        response = await client.get("/v1/speed-to-lead", params={"to": "2026-12-01"})
        assert response.status_code == 200, response.text
        overall = response.json()["overall"]
        by_rep = (
            await client.get("/v1/speed-to-lead", params={"to": "2026-12-01", "group_by": "rep"})
        ).json()
    assert overall["to_first_webhook_seconds"]["count"] == len(delivered)
    assert overall["to_first_webhook_seconds"]["p50"] < 3
    assert 0.6 < overall["sla_compliance"] < 0.85
    # A missed hand-off was escalated to another rep (a hand-off of theirs), who took the lead on
    # if it ever was: each acknowledgement is the rep's who made it, from their own hand-off.
    escalated = [row for row in handed if row["breached_at"]]
    connection = await asyncpg.connect(dsn)
    try:
        assert await connection.fetchval("SELECT count(*) FROM metrics.hand_offs") == len(handed) + len(
            escalated
        )
    finally:
        await connection.close()
    acknowledged = sum(row["to_acknowledgement_seconds"]["count"] for row in by_rep["rows"])
    assert acknowledged == sum(1 for row in handed if row["acknowledged_at"])


def test_leadflow_seed_says_what_it_wrote_and_how(servers: Servers) -> None:
    result = CliRunner().invoke(
        main, ["seed", "--leads", "1000"], env={"LEADFLOW_DATABASE_URL": servers.database_url}
    )
    assert result.exit_code == 0, result.output
    assert "1,000 of 1,000 leads written" in result.output
    assert "bulk-loaded into metrics' read model" in result.output
    assert "scoring: 1,000 of 1,000 leads written" in result.output
    assert "1,000 standings and" in result.output

    async def leads(query: str) -> set[tuple[object, ...]]:
        connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
        try:
            return {tuple(row) for row in await connection.fetch(query)}
        finally:
            await connection.close()

    in_metrics = asyncio.run(leads("SELECT lead_id, temperature, stage FROM metrics.lead_facts"))
    in_scoring = asyncio.run(leads("SELECT lead_id, temperature, stage FROM scoring.lead_scores"))
    assert len(in_metrics) == 1000 and in_scoring == in_metrics, "the same leads, seen alike"


def test_leadflow_seed_without_a_database_url_fills_the_database_leadflow_dev_runs(
    servers: Servers, tmp_path: Path
) -> None:
    """`make run` with LEADFLOW_PG_PORT moves its embedded PostgreSQL; `leadflow seed` in the
    next terminal follows it there (it went to the default port, 54329, and failed or filled
    another stack's database), with the password that stack keeps in its LEADFLOW_HOME."""
    where = urlsplit(servers.database_url)
    assert where.hostname == "127.0.0.1" and where.username == "postgres"  # as `leadflow dev`'s
    home = tmp_path / "home"
    if where.password is not None:  # the embedded server's, kept as `leadflow dev` keeps it
        home.mkdir()
        (home / "postgres.password").write_text(where.password + "\n")
    env = {
        "LEADFLOW_DATABASE_URL": None,
        "LEADFLOW_PG_PORT": str(where.port),
        "LEADFLOW_DATABASE": where.path[1:],
        "LEADFLOW_HOME": str(home),
    }
    result = CliRunner().invoke(main, ["seed", "--leads", "300", "--seed", "11"], env=env)
    assert result.exit_code == 0, result.output

    async def seeded() -> int:
        connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
        try:
            return int(await connection.fetchval("SELECT count(*) FROM metrics.lead_facts"))
        finally:
            await connection.close()

    assert asyncio.run(seeded()) == 300


def test_leadflow_seed_in_another_home_says_the_password_was_refused(
    servers: Servers, tmp_path: Path
) -> None:
    """The embedded PostgreSQL asks for the password its LEADFLOW_HOME keeps: a seed run with
    another home is told so in a line, not a traceback."""
    where = urlsplit(servers.database_url)
    if where.password is None:
        pytest.skip("LEADFLOW_TEST_DATABASE_URL names a server without a password")
    env = {
        "LEADFLOW_DATABASE_URL": None,
        "LEADFLOW_PG_PORT": str(where.port),
        "LEADFLOW_DATABASE": where.path[1:],
        "LEADFLOW_HOME": str(tmp_path / "elsewhere"),
    }
    result = CliRunner().invoke(main, ["seed", "--leads", "10"], env=env)
    assert result.exit_code == 1
    assert "password authentication failed" in result.output
    assert "with this LEADFLOW_HOME" in result.output and "Traceback" not in result.output


def test_leadflow_seed_says_when_postgresql_cannot_be_reached() -> None:
    with socket.socket() as bound:  # a port bound but not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        env = {"LEADFLOW_DATABASE_URL": f"postgresql+asyncpg://postgres:secret@127.0.0.1:{port}/x"}
        result = CliRunner().invoke(main, ["seed", "--leads", "10"], env=env)
    assert result.exit_code == 1
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}/x" in result.output
    assert "secret" not in result.output and "Traceback" not in result.output
