"""Scoring's side of `leadflow seed`: the leads of the data set (the caller's: same ids,
captured at the same moments, at the same temperature and stage as in metrics), each with a
standing decided by the real rules and a few changes of history.

Deciding a million leads one by one would take minutes, so a pool of profiles (job titles,
company sizes, timeframes in three languages, activities) is decided once with the default
rules, and each lead takes a pool entry of its temperature. Bulk-loaded (COPY) into scoring's
own tables, not produced through its consumer. The same seed and `until` give the same rows."""

import json
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from services.scoring.classify import Decision, decide
from services.scoring.profile import Profile, fold
from services.scoring.rules import default_rules_text, parse_rules
from shared.events import ACTIVITY_RECORDED, LEAD_CAPTURED, Envelope
from shared.seeded import Table, UnseededRows, unseeded_rows

CHUNK = 20_000
POOL = 600
RULES_VERSION = 1
TITLES = ("CEO", "Head of sales", "Manager", "Engineer", "Директор", "Marketing lead", "")
SIZES = ("5", "11-50", "60", "300", "1000+")
TIMEFRAMES = ("immediately", "about two months", "none", "срочно", "через две недели", "gələn ay", "")
ACTIVITIES = ("page_view", "content_view", "email_click", "webinar_attended", "demo_request", "pricing_view")
SCORE_COLUMNS = [
    "lead_id",
    "score",
    "fit",
    "engagement",
    "intent",
    "temperature",
    "stage",
    "stage_since",
    "breakdown",
    "bant",
    "rules_version",
    "profile",
    "review_at",
    "updated_at",
]
EMPTIED = (
    Table("lead_scores", "lead_id", "standing", "standings"),
    Table("classification_history", "lead_id", "change of history", "changes of history"),
)
HISTORY_COLUMNS = [
    "lead_id",
    "at",
    "cause",
    "score",
    "temperature",
    "stage",
    "previous_score",
    "previous_temperature",
    "previous_stage",
    "rules_version",
]


class SeedLead(NamedTuple):
    lead_id: uuid.UUID
    captured_at: datetime
    temperature: str
    stage: str


def decided_pool(seed: int, now: datetime) -> dict[str, list[tuple[Decision, dict[str, Any]]]]:
    """Profiles decided with the default rules, by the temperature they came out at."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible data set, not security
    rules = parse_rules(default_rules_text())
    pool: dict[str, list[tuple[Decision, dict[str, Any]]]] = {"hot": [], "warm": [], "cold": []}
    for i in range(POOL):
        profile, lead = Profile(), uuid.UUID(int=rng.getrandbits(128))
        captured = now - timedelta(days=rng.uniform(0, 20))
        attributes = {
            "email": f"seed-{i}@example.kz",
            "company": "Qazaq Trade",
            "job_title": rng.choice(TITLES),
            "company_size": rng.choice(SIZES),
            "timeframe": rng.choice(TIMEFRAMES),
            "channel": rng.choice(("web_form", "landing_page", "chatbot", "callback_request")),
            "captured_at": captured.isoformat(),
        }
        fold(profile, _event(LEAD_CAPTURED, lead, captured, attributes))
        for _ in range(rng.randint(0, 8)):
            at = captured + timedelta(hours=rng.uniform(0, 400))
            activity = {"activity_id": str(uuid.uuid4()), "activity_type": rng.choice(ACTIVITIES)}
            fold(profile, _event(ACTIVITY_RECORDED, lead, at, {**activity, "occurred_at": at.isoformat()}))
        decision = decide(None, None, profile, rules, now)
        pool[decision.evaluation.temperature].append(
            (decision, profile.model_dump(mode="json", exclude_defaults=True))
        )
    return pool


def _event(kind: str, lead: uuid.UUID, at: datetime, data: dict[str, Any]) -> Envelope:
    return Envelope(type=kind, lead_id=lead, correlation_id=lead, producer="seed", occurred_at=at, data=data)


def scoring_rows(
    lead: SeedLead, pool: dict[str, list[tuple[Decision, dict[str, Any]]]], rng: random.Random
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One lead's standing and its history."""
    temperature, captured, stage = lead.temperature, lead.captured_at, lead.stage
    decision, profile = rng.choice(pool[temperature] or pool["cold"])
    evaluation = decision.evaluation
    updated = captured + timedelta(hours=rng.uniform(0, 72))
    standing = (
        lead.lead_id,
        evaluation.score,
        evaluation.fit,
        evaluation.engagement,
        evaluation.intent,
        temperature,
        stage,
        updated,
        json.dumps([hit.model_dump() for hit in evaluation.breakdown]),
        json.dumps(evaluation.bant.as_dict()),
        RULES_VERSION,
        json.dumps(profile),
        None,  # no decay due: the service would otherwise start working through them at once
        updated,
    )
    history: list[tuple[Any, ...]] = []
    before: tuple[Any, ...] = (None, None, None)
    steps = rng.randint(1, 4)
    for step in range(1, steps + 1):
        score = max(0, evaluation.score - (steps - step) * rng.randint(3, 12))
        after = (score, temperature if step == steps else "cold", stage if step == steps else "lead")
        at = captured + (updated - captured) * step / steps
        history.append((lead.lead_id, at, "seed", *after, *before, RULES_VERSION))
        before = after
    return standing, history


async def seed(
    dsn: str,
    leads: Iterable[SeedLead],
    until: datetime,
    seed: int = 1,
    schema: str = "scoring",
    progress: Callable[[int], None] = lambda done: None,
    replace_everything: bool = False,
) -> int:
    """Write the leads' standings into `schema` (emptied first); returns the history rows
    written. `until`: the data set's last moment, when the pool's profiles are decided. Raises
    UnseededRows, having changed nothing, when the tables hold leads whose ids are no seed's
    (shared.seeded), unless `replace_everything`."""
    pool = decided_pool(seed, until)
    rng = random.Random(seed + 2)  # noqa: S311 - a reproducible data set, not security
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():  # the lock: nothing arrives between count and TRUNCATE
            tables = f'"{schema}".lead_scores, "{schema}".classification_history'
            await connection.execute(f"LOCK {tables} IN ACCESS EXCLUSIVE MODE")
            found = await unseeded_rows(connection, schema, EMPTIED)
            if found and not replace_everything:
                raise UnseededRows({"scoring": found})
            await connection.execute(f"TRUNCATE {tables}")
        standings: list[tuple[Any, ...]] = []
        history: list[tuple[Any, ...]] = []
        written = 0
        done = 0
        for done, lead in enumerate(leads, 1):
            standing, changes = scoring_rows(lead, pool, rng)
            standings.append(standing)
            history += changes
            if len(standings) == CHUNK:
                written += await _copy(connection, schema, standings, history)
                standings, history = [], []
                progress(done)
        if standings:
            written += await _copy(connection, schema, standings, history)
            progress(done)
        await connection.execute(f'ANALYZE "{schema}".lead_scores; ANALYZE "{schema}".classification_history')
    finally:
        await connection.close()
    return written


async def _copy(
    connection: asyncpg.Connection,
    schema: str,
    standings: list[tuple[Any, ...]],
    history: list[tuple[Any, ...]],
) -> int:
    async with connection.transaction():
        await connection.copy_records_to_table(
            "lead_scores", schema_name=schema, columns=SCORE_COLUMNS, records=standings
        )
        await connection.copy_records_to_table(
            "classification_history", schema_name=schema, columns=HISTORY_COLUMNS, records=history
        )
    return len(history)
