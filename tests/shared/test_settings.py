"""A service others can reach (production, or bound beyond loopback) refuses to start without
real secrets: no admin token, the development default, one shorter than 12 characters; in
nurture, no sealing key or unsubscribe secret, or one shorter than 32 (README "Security").
Pure: no servers."""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import typer
from pydantic import ValidationError

from services.ingest.config import IngestSettings
from services.metrics.config import MetricsSettings
from services.nurture.config import NurtureSettings
from services.scoring.config import ScoringSettings
from shared.embedded import free_port
from shared.settings import DEV_ADMIN_TOKEN, DEV_VIEWER_TOKEN, is_loopback

SECRETS = {
    "LEADFLOW_SECRET_KEY": "a-sealing-key-kept-safe-32-chars-long",
    "LEADFLOW_UNSUBSCRIBE_SECRET": "an-unsubscribe-secret-of-32-chars-or-more",
    "LEADFLOW_DATABASE_URL": "postgresql+asyncpg://leadflow:db-pa55word@db.internal:5432/leadflow",
    "LEADFLOW_KAFKA_BOOTSTRAP": "kafka.internal:9092",
}
EVERY_SERVICE = [IngestSettings, ScoringSettings, NurtureSettings, MetricsSettings]
REFUSED = {
    "no token": (None, "LEADFLOW_ADMIN_TOKEN must be set when LEADFLOW_ENV=production"),
    "the development token": (DEV_ADMIN_TOKEN, "must not be the development token when LEADFLOW_ENV=prod"),
    "a short token": ("eleven-char", "LEADFLOW_ADMIN_TOKEN must be at least 12 characters"),
}


def environment(token: str | None, **more: str) -> dict[str, str]:
    """The process environment without any LEADFLOW_* of ours, in production with `token`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {"LEADFLOW_ENV": "production", **SECRETS, **more}
    if token is not None:
        env["LEADFLOW_ADMIN_TOKEN"] = token
    return env


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [k for k in os.environ if k.startswith("LEADFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LEADFLOW_ENV", "production")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.mark.parametrize("settings_type", EVERY_SERVICE, ids=lambda t: t.__name__)
@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_production_settings_refuse_a_missing_development_or_short_admin_token(
    production: pytest.MonkeyPatch, settings_type: type, case: str
) -> None:
    token, reason = REFUSED[case]
    if token is not None:
        production.setenv("LEADFLOW_ADMIN_TOKEN", token)
    with pytest.raises(ValidationError, match=reason) as refused:
        settings_type()
    assert token is None or token not in str(refused.value), "a refused token is not echoed into the logs"


@pytest.mark.parametrize("settings_type", EVERY_SERVICE, ids=lambda t: t.__name__)
def test_production_settings_take_a_real_admin_token(
    production: pytest.MonkeyPatch, settings_type: type
) -> None:
    production.setenv("LEADFLOW_ADMIN_TOKEN", "a-long-random-production-token")
    assert settings_type().admin_token_value == "a-long-random-production-token"


@pytest.mark.parametrize("settings_type", EVERY_SERVICE, ids=lambda t: t.__name__)
def test_production_without_a_database_url_refuses_to_start(
    production: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings_type: type
) -> None:
    """It took the development default, the embedded PostgreSQL of `leadflow dev` on this machine,
    without a word: it failed to connect at each try, or wrote into a development database."""
    from shared.refusals import load_settings

    production.setenv("LEADFLOW_ADMIN_TOKEN", "a-long-random-production-token")
    production.delenv("LEADFLOW_DATABASE_URL")
    with pytest.raises(typer.Exit) as refused:
        load_settings("ingest", settings_type)
    assert refused.value.exit_code == 2
    said = capsys.readouterr()
    assert said.err == (
        "ingest: configuration refused: LEADFLOW_DATABASE_URL must be set when LEADFLOW_ENV=production\n"
    )
    for secret in ("a-long-random-production-token", *SECRETS.values()):
        assert secret not in said.out + said.err


@pytest.mark.parametrize("settings_type", EVERY_SERVICE, ids=lambda t: t.__name__)
def test_production_without_a_broker_refuses_to_start(
    production: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings_type: type
) -> None:
    """Its default is `leadflow dev`'s broker on this machine: a production service without the
    variable published nowhere, or into a development broker."""
    from shared.refusals import load_settings

    production.setenv("LEADFLOW_ADMIN_TOKEN", "a-long-random-production-token")
    production.delenv("LEADFLOW_KAFKA_BOOTSTRAP")
    with pytest.raises(typer.Exit) as refused:
        load_settings("ingest", settings_type)
    assert refused.value.exit_code == 2
    assert capsys.readouterr().err == (
        "ingest: configuration refused: LEADFLOW_KAFKA_BOOTSTRAP must be set when LEADFLOW_ENV=production\n"
    )


def test_outside_production_the_development_token_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("LEADFLOW_")]:
        monkeypatch.delenv(name)
    assert IngestSettings().admin_token_value == DEV_ADMIN_TOKEN


def test_a_service_started_in_production_with_the_development_token_exits_at_once() -> None:
    """The entry point a deployment runs: it stops before opening a port or a connection
    (the database and broker named here do not exist). Each refusal's reason is checked above;
    this is the wiring, so one case is enough (a process start costs seconds)."""
    token, reason = REFUSED["the development token"]
    nowhere = {
        "LEADFLOW_INGEST_PORT": str(free_port()),
        "LEADFLOW_DATABASE_URL": f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none",
        "LEADFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
    }
    started = subprocess.run(
        [sys.executable, "-m", "services.ingest", "serve"],
        env=environment(token, **nowhere),
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = "".join(started.stderr.split())  # the traceback is wrapped to the terminal's width
    assert started.returncode != 0
    assert "".join(reason.split()) in said
    assert token is None or token not in said, "a refused token is not echoed into the logs"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.7", "leadflow.example.kz"])
def test_a_service_bound_beyond_loopback_refuses_the_development_tokens(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    """The shipped image once listened on 0.0.0.0 in dev mode, with the public dev token."""
    for name in [k for k in os.environ if k.startswith("LEADFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LEADFLOW_HOST", host)
    with pytest.raises(ValidationError, match=f"LEADFLOW_ADMIN_TOKEN must be set on {host}"):
        ScoringSettings()
    monkeypatch.setenv("LEADFLOW_ADMIN_TOKEN", DEV_ADMIN_TOKEN)
    with pytest.raises(ValidationError, match="must not be the development token on"):
        ScoringSettings()
    monkeypatch.setenv("LEADFLOW_ADMIN_TOKEN", "a-long-random-production-token")
    monkeypatch.setenv("LEADFLOW_VIEWER_TOKEN", DEV_VIEWER_TOKEN)
    with pytest.raises(ValidationError, match="LEADFLOW_VIEWER_TOKEN must not be the development token"):
        ScoringSettings()
    monkeypatch.delenv("LEADFLOW_VIEWER_TOKEN")
    exposed = ScoringSettings()
    assert exposed.viewer_token_value is None, "no default viewer token where others reach it"
    assert not exposed.public_docs and not exposed.public_metrics
    with pytest.raises(ValidationError, match="LEADFLOW_SECRET_KEY is required on"):
        NurtureSettings()


@pytest.mark.parametrize(
    ("settings_type", "variable", "value"),
    [
        (ScoringSettings, "LEADFLOW_TRUSTED_PROXIES", "127.0.0.1"),
        (IngestSettings, "LEADFLOW_INGEST_PUBLIC_URL", "https://leads.example.kz"),
        (NurtureSettings, "LEADFLOW_NURTURE_PUBLIC_URL", "https://leads.example.kz"),
    ],
)
def test_on_loopback_behind_a_proxy_the_development_tokens_are_refused(
    monkeypatch: pytest.MonkeyPatch, settings_type: type, variable: str, value: str
) -> None:
    """Bound to loopback behind nginx on the same machine, a service took itself for a
    developer's: the published dev token opened it to everyone (found by a review). A proxy
    named, or a public address of its own, says others reach it."""
    for name in [k for k in os.environ if k.startswith("LEADFLOW_")]:
        monkeypatch.delenv(name)
    assert settings_type().admin_token_value == DEV_ADMIN_TOKEN  # on loopback alone, as before
    monkeypatch.setenv(variable, value)
    with pytest.raises(
        ValidationError, match=rf"LEADFLOW_ADMIN_TOKEN must be set behind a proxy \({variable} is set\)"
    ):
        settings_type()
    monkeypatch.setenv("LEADFLOW_ADMIN_TOKEN", "a-long-random-production-token")
    if settings_type is NurtureSettings:
        with pytest.raises(
            ValidationError, match=rf"LEADFLOW_SECRET_KEY is required behind a proxy \({variable}"
        ):
            settings_type()
        return
    exposed = settings_type()
    assert exposed.viewer_token_value is None and not exposed.public_docs and not exposed.public_metrics


def test_on_loopback_in_dev_the_development_tokens_and_open_docs_are_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [k for k in os.environ if k.startswith("LEADFLOW_")]:
        monkeypatch.delenv(name)
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert is_loopback(host)
        settings = NurtureSettings(host=host)
        tokens = settings.admin_token_value, settings.viewer_token_value
        assert tokens == (DEV_ADMIN_TOKEN, DEV_VIEWER_TOKEN)
        assert settings.public_docs and settings.public_metrics


@pytest.mark.parametrize("name", ["LEADFLOW_SECRET_KEY", "LEADFLOW_UNSUBSCRIBE_SECRET"])
def test_nurture_refuses_a_missing_or_short_secret_in_production(
    production: pytest.MonkeyPatch, name: str
) -> None:
    production.setenv("LEADFLOW_ADMIN_TOKEN", "a-long-random-production-token")
    production.setenv(name, "thirty-one-characters-is-short!")
    with pytest.raises(ValidationError, match=f"{name} must be at least 32 characters"):
        NurtureSettings()
    production.delenv(name)
    with pytest.raises(ValidationError, match=f"{name} is required in production"):
        NurtureSettings()


def test_rotating_the_admin_token_keeps_every_unsubscribe_link_working(
    production: pytest.MonkeyPatch,
) -> None:
    from services.nurture.unsubscribe_links import unsubscribe_token

    lead = uuid.uuid4()
    before = NurtureSettings(admin_token="the-admin-token-before-rotation")
    after = NurtureSettings(admin_token="the-admin-token-after-rotation!")
    assert unsubscribe_token(before.unsubscribe_key, lead) == unsubscribe_token(after.unsubscribe_key, lead)
    production.setenv("LEADFLOW_UNSUBSCRIBE_SECRET", "another-unsubscribe-secret-32-chars-long")
    other = NurtureSettings(admin_token="the-admin-token-after-rotation!")
    assert unsubscribe_token(other.unsubscribe_key, lead) != unsubscribe_token(after.unsubscribe_key, lead)


def test_the_shipped_image_runs_in_production_mode() -> None:
    """The image's environment is production, so a container started from it without real
    secrets exits (the entry point's refusal is tested above)."""
    dockerfile = (Path(__file__).parents[2] / "deploy" / "Dockerfile").read_text()
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert re.search(r"^\s*LEADFLOW_ENV=production\b", runtime, re.MULTILINE), "ENV LEADFLOW_ENV=production"


def test_scoring_takes_larger_consumer_batches_than_the_others_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LEADFLOW_CONSUMER_BATCH_SIZE", raising=False)
    assert ScoringSettings().consumer_batch_size == 2000
    assert MetricsSettings().consumer_batch_size == 500
    monkeypatch.setenv("LEADFLOW_CONSUMER_BATCH_SIZE", "300")
    assert ScoringSettings().consumer_batch_size == 300


def test_nurture_says_when_its_links_point_at_this_machine_where_others_reach_it(
    production: pytest.MonkeyPatch,
) -> None:
    production.setenv("LEADFLOW_ADMIN_TOKEN", "a-long-random-production-token")
    production.setenv("LEADFLOW_SECRET_KEY", "a-secret-key-of-thirty-two-characters")
    production.setenv("LEADFLOW_UNSUBSCRIBE_SECRET", "an-unsubscribe-secret-32-characters")
    unset = NurtureSettings().unreachable_links
    assert unset is not None and "LEADFLOW_NURTURE_PUBLIC_URL is http://127.0.0.1:8003" in unset
    assert NurtureSettings(public_url="https://leads.example.kz").unreachable_links is None
    production.setenv("LEADFLOW_ENV", "dev")
    assert NurtureSettings(host="127.0.0.1").unreachable_links is None  # only this machine anyway


WRONG = {  # variable, value, what the one line says
    "not a number": (
        "LEADFLOW_DB_POOL_SIZE",
        "ten",
        "LEADFLOW_DB_POOL_SIZE: Input should be a valid integer",
    ),
    "negative": (
        "LEADFLOW_DB_POOL_SIZE",
        "-1",
        "LEADFLOW_DB_POOL_SIZE: Input should be greater than or equal to 1",
    ),
    "a port out of range": ("LEADFLOW_SCORING_PORT", "99999", "LEADFLOW_SCORING_PORT: must be a TCP port"),
    "an unknown environment": (
        "LEADFLOW_ENV",
        "prod",
        "LEADFLOW_ENV: Input should be 'dev', 'test' or 'production'",
    ),
    "an unknown log level": ("LEADFLOW_LOG_LEVEL", "LOUD", "LEADFLOW_LOG_LEVEL: must be one of DEBUG, INFO"),
    "a malformed database URL": (
        "LEADFLOW_DATABASE_URL",
        "postgres//db:5432",
        "LEADFLOW_DATABASE_URL: is not a database URL",
    ),
    "a URL of another driver": (
        "LEADFLOW_DATABASE_URL",
        "postgresql://leadflow:pa55word@db:5432/leadflow",
        "LEADFLOW_DATABASE_URL: must start with postgresql+asyncpg://, not postgresql://",
    ),
    "an ingest URL without its scheme": (
        "LEADFLOW_INGEST_URL",
        "ingest:8001",
        "LEADFLOW_INGEST_URL: must be an http:// or https:// URL with a host",
    ),
    "a journal kept longer than the inboxes remember": (
        "LEADFLOW_JOURNAL_RETENTION_DAYS",
        "30",
        "LEADFLOW_INBOX_RETENTION_DAYS (14) must be at least LEADFLOW_JOURNAL_RETENTION_DAYS (30)",
    ),
    "no broker": ("LEADFLOW_KAFKA_BOOTSTRAP", " ", "LEADFLOW_KAFKA_BOOTSTRAP: must name at least one broker"),
}


@pytest.mark.parametrize("case", WRONG, ids=str)
def test_a_refused_setting_is_one_line_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    from shared.refusals import load_settings

    variable, value, said = WRONG[case]
    for name in [k for k in os.environ if k.startswith("LEADFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(variable, value)
    with pytest.raises(typer.Exit) as refused:
        load_settings("scoring", ScoringSettings)
    assert refused.value.exit_code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"scoring: configuration refused: {lines[0].split('refused: ', 1)[1]}"]
    assert said in lines[0]
    assert "pa55word" not in lines[0], "a refused value is not echoed: it may be a secret"


def test_production_with_nothing_set_names_everything_it_needs_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each refusal was said alone: an operator set the token, started again, was told about the
    database and the broker, then about nurture's secrets, one start at a time."""
    from shared.refusals import load_settings

    for name in [k for k in os.environ if k.startswith("LEADFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LEADFLOW_ENV", "production")
    monkeypatch.setenv("LEADFLOW_VIEWER_TOKEN", "dev-viewer-token")
    with pytest.raises(typer.Exit) as refused:
        load_settings("nurture", NurtureSettings)
    assert refused.value.exit_code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"nurture: configuration refused: {reason}"
        for reason in (
            "LEADFLOW_ADMIN_TOKEN must be set when LEADFLOW_ENV=production",
            "LEADFLOW_VIEWER_TOKEN must not be the development token when LEADFLOW_ENV=production",
            "LEADFLOW_DATABASE_URL and LEADFLOW_KAFKA_BOOTSTRAP must be set when LEADFLOW_ENV=production",
            "LEADFLOW_SECRET_KEY is required in production",
            "LEADFLOW_UNSUBSCRIBE_SECRET is required in production",
        )
    ]


def test_nurture_names_both_variables_when_a_send_may_outlive_its_lease(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.refusals import load_settings

    monkeypatch.setenv("LEADFLOW_NURTURE_WEBHOOK_TIMEOUT_SECONDS", "100")
    monkeypatch.setenv("LEADFLOW_NURTURE_WEBHOOK_RETRY_SCHEDULE", "[5, 300")
    with pytest.raises(typer.Exit):
        load_settings("nurture", NurtureSettings)
    assert "LEADFLOW_NURTURE_WEBHOOK_RETRY_SCHEDULE: is not valid JSON" in capsys.readouterr().err
    monkeypatch.delenv("LEADFLOW_NURTURE_WEBHOOK_RETRY_SCHEDULE")
    with pytest.raises(typer.Exit):
        load_settings("nurture", NurtureSettings)
    assert capsys.readouterr().err == (
        "nurture: configuration refused: LEADFLOW_NURTURE_TOUCH_LEASE_SECONDS must be more than"
        " twice LEADFLOW_NURTURE_WEBHOOK_TIMEOUT_SECONDS\n"
    )


ENTRY_POINTS = {
    "scoring serve": (["-m", "services.scoring", "serve"], "scoring"),
    "ingest migrate": (["-m", "services.ingest", "migrate"], "ingest"),
    "leadflow migrate": (["-c", "from shared.cli import main; main()", "migrate"], "leadflow"),
}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=str)
def test_each_entry_point_says_a_refused_setting_in_one_line_not_a_traceback(entry_point: str) -> None:
    """What an operator sees: the line, and exit code 2, before any connection."""
    arguments, program = ENTRY_POINTS[entry_point]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env["LEADFLOW_DB_POOL_SIZE"] = "ten"
    started = subprocess.run(
        [sys.executable, *arguments], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 2
    assert started.stderr.splitlines() == [
        f"{program}: configuration refused: LEADFLOW_DB_POOL_SIZE: Input should be a valid integer,"
        " unable to parse string as an integer"
    ]


@pytest.mark.parametrize(
    ("settings_type", "variable"),
    [
        (NurtureSettings, "LEADFLOW_NURTURE_PUBLIC_URL"),
        (NurtureSettings, "LEADFLOW_NURTURE_SMS_URL"),
        (NurtureSettings, "LEADFLOW_NURTURE_MESSENGER_URL"),
        (MetricsSettings, "LEADFLOW_SCORING_URL"),
        (MetricsSettings, "LEADFLOW_NURTURE_URL"),
    ],
)
def test_a_url_without_scheme_or_host_is_refused_at_start_not_at_each_request(
    monkeypatch: pytest.MonkeyPatch, settings_type: type, variable: str
) -> None:
    """`leads.example.kz` as nurture's public URL made every acknowledge link in a webhook and
    unsubscribe link in an email lead nowhere; `sms:80/send`, every text fail at its send."""
    for name in [k for k in os.environ if k.startswith("LEADFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(variable, "leads.example.kz")
    with pytest.raises(
        ValidationError, match=f"{variable}\n.*must be an http:// or https:// URL with a host"
    ):
        settings_type()
    monkeypatch.setenv(variable, "http://localhost:8080")  # a public one says others reach it: tokens then
    settings_type()


@pytest.mark.parametrize(
    ("variable", "value", "taken"),
    [
        ("LEADFLOW_JOURNAL_RETENTION_DAYS", "14", 14),  # as long as the inboxes remember (DESIGN.md: >=)
        ("LEADFLOW_LOG_LEVEL", "warn", "WARNING"),  # logging's own alias
        ("LEADFLOW_LOG_LEVEL", "FATAL", "CRITICAL"),
    ],
)
def test_settings_that_worked_before_are_still_taken(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, taken: object
) -> None:
    """A release that refused them would stop every service of a deployment that ran."""
    for name in [k for k in os.environ if k.startswith("LEADFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(variable, value)
    settings = ScoringSettings()
    assert getattr(settings, variable.removeprefix("LEADFLOW_").lower()) == taken


def test_an_sms_or_messenger_url_set_empty_is_no_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a Compose or Helm template leaves a variable it has no value for."""
    monkeypatch.setenv("LEADFLOW_NURTURE_SMS_URL", "")
    monkeypatch.setenv("LEADFLOW_NURTURE_MESSENGER_URL", " ")
    settings = NurtureSettings(admin_token="test-admin-token", env="test")
    assert (settings.sms_url, settings.messenger_url) == (None, None)
