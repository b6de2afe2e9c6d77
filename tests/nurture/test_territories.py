"""A territory and a lead's country are compared as countries: its ISO 3166 code (alpha-2 or
alpha-3) or its name in English, Russian, Kazakh or Azerbaijani, in any letter case, name the
same place. What names no country (a city, a typo) is compared as text, as before."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.countries import country_of
from services.nurture.routing import competes, matches
from shared.db import Database
from shared.events import utcnow
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.nurture.test_no_rep_matches import hand_off_of
from tests.nurture.test_routing import Rep
from tests.nurture.test_sla import SLA, add, assign, bodies, settings_of
from tests.receiver import webhook_receiver

KAZAKHSTAN = [
    "KZ", "kz", "KAZ", "Kazakhstan", "KAZAKHSTAN", " kazakhstan. ", "Republic of Kazakhstan",
    "Казахстан", "казахстан", "Республика Казахстан",
    "Қазақстан", "ҚАЗАҚСТАН", "Қазақстан Республикасы",
    "Qazaxıstan", "Qazaxstan", "Qazaqstan", "Kazakstan",
]  # fmt: skip
AZERBAIJAN = [
    "AZ", "aze", "Azerbaijan", "Republic of Azerbaijan",
    "Азербайджан", "Республика Азербайджан",
    "Әзірбайжан",
    "Azərbaycan", "AZƏRBAYCAN", "Azerbaycan", "Azerbaijan Republic",
]  # fmt: skip
RUSSIA = ["RU", "RUS", "Russia", "Russian Federation", "Россия", "Российская Федерация", "Ресей", "Rusiya"]


@pytest.mark.parametrize(
    ("country", "names"), [("KZ", KAZAKHSTAN), ("AZ", AZERBAIJAN), ("RU", RUSSIA)], ids=["KZ", "AZ", "RU"]
)
def test_a_territory_covers_its_country_however_the_lead_names_it(country: str, names: list[str]) -> None:
    """Each spelling as a rep's territory covers a lead with each other one as its country."""
    assert {name: country_of(name) for name in names} == dict.fromkeys(names, country)
    missed = [
        (territory, lead_country)
        for territory in names
        for lead_country in names
        if not matches(Rep("Rep", territories=[territory]), {"country": lead_country})
    ]
    assert missed == []


def test_a_territory_covers_no_other_country() -> None:
    for territory in ("KZ", "Казахстан", "Qazaxıstan"):
        rep = Rep("Almaty", territories=[territory])
        for other in ("AZ", "Azərbaycan", "Азербайджан", "RU", "Ресей", "UZ", "Kazan", "ZZ", ""):
            assert not matches(rep, {"country": other}), (territory, other)


def test_cities_and_what_names_no_country_match_as_text_as_before() -> None:
    almaty = Rep("Almaty", territories=["Almaty", "Kazakstn"])
    assert matches(almaty, {"country": "KZ", "city": " almaty "})
    assert matches(almaty, {"country": "kazakstn"})  # a typo matches itself, as it always did
    assert not matches(almaty, {"country": "Kazakhstan"})  # no country: no guess at which
    assert not matches(almaty, {"country": "KZ", "city": "Astana"})
    assert matches(Rep("Baku", territories=["Baku"]), {"city": "BAKU", "country": "Azərbaycan"})


def test_reps_covering_one_country_by_different_names_compete() -> None:
    """They are given the same leads, so one joining starts level with the other."""
    assert competes(Rep("Astana", territories=["KZ"]), Rep("Almaty", territories=["Қазақстан"]))
    assert not competes(Rep("Astana", territories=["KZ"]), Rep("Baku", territories=["Azərbaycan"]))


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings, sla_seconds=SLA.total_seconds(), sla_check_every_seconds=3600, touches_enabled=False
    )
    app = create_app(settings)
    async with running(app) as client:
        await caught_up(app)
        yield client


@pytest.mark.parametrize(
    ("territory", "lead_country"),
    [("KZ", "Kazakhstan"), ("Azərbaycan", "Азербайджан"), ("Қазақстан", "KAZ")],
    ids=["KZ-Kazakhstan", "az-ru", "kk-KAZ"],
)
async def test_a_hot_lead_goes_to_the_rep_whose_territory_names_its_country_another_way(
    servers: Servers, nurture: httpx.AsyncClient, territory: str, lead_country: str
) -> None:
    """The review's case: a rep given the territory "KZ", a hot lead from a form that says
    "Kazakhstan". Nobody was given it, and delivery health counted it as told nobody."""
    db: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with db.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))  # earlier tests' reps and managers
    before = (await nurture.get("/v1/delivery-health")).json()
    with webhook_receiver() as rep_box:
        rep = await add(nurture, rep_box, f"Rep {uuid.uuid4().hex[:6]}")
        changed = await nurture.patch(
            f"/v1/reps/{rep['id']}", json={"territories": [territory]}, headers=ADMIN
        )
        assert changed.status_code == 200, changed.text
        event = await assign(db, settings_of(nurture), utcnow(), country=lead_country, timeframe="now")
        [handed] = await eventually(lambda: bodies(rep_box), timeout=20)
    assert handed["type"] == "lead.hot" and handed["data"]["lead_id"] == str(event.lead_id)
    assert handed["data"]["rep_id"] == rep["id"]
    hand_off = await hand_off_of(db, event.lead_id)
    assert hand_off is not None and hand_off["rep_id"] == uuid.UUID(rep["id"])
    after = (await nurture.get("/v1/delivery-health")).json()
    assert after["leads_told_nobody"] == before["leads_told_nobody"]


async def test_a_hot_lead_that_gives_only_a_phone_goes_to_a_rep_of_its_phones_country(
    servers: Servers, nurture: httpx.AsyncClient
) -> None:
    """The review's case: a callback widget's lead, a name and a Kazakh mobile number, and reps
    with territories. No rep was given it; the managers were told no rep covers its region."""
    db: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with db.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))  # earlier tests' reps and managers
    with webhook_receiver() as rep_box:
        rep = await add(nurture, rep_box, f"Rep {uuid.uuid4().hex[:6]}")
        changed = await nurture.patch(
            f"/v1/reps/{rep['id']}", json={"territories": ["Казахстан"]}, headers=ADMIN
        )
        assert changed.status_code == 200, changed.text
        event = await assign(db, settings_of(nurture), utcnow(), email=None, phone="+77015553322")
        [handed] = await eventually(lambda: bodies(rep_box), timeout=20)
    assert handed["type"] == "lead.hot" and handed["data"]["lead_id"] == str(event.lead_id)
    hand_off = await hand_off_of(db, event.lead_id)
    assert hand_off is not None and hand_off["rep_id"] == uuid.UUID(rep["id"])


async def test_a_hot_lead_that_names_a_city_but_no_country_goes_to_a_rep_of_its_phones_country(
    servers: Servers, nurture: httpx.AsyncClient
) -> None:
    """The review's case: Anna in Almaty wrote her city, not her country, and a Kazakh mobile;
    the only rep covered "Kazakhstan". Nobody was told of her hot lead."""
    db: Database = nurture._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with db.transaction() as session:
        await session.execute(text("UPDATE reps SET active = false"))  # earlier tests' reps and managers
    with webhook_receiver() as rep_box:
        rep = await add(nurture, rep_box, f"Rep {uuid.uuid4().hex[:6]}")
        changed = await nurture.patch(
            f"/v1/reps/{rep['id']}", json={"territories": ["Kazakhstan"]}, headers=ADMIN
        )
        assert changed.status_code == 200, changed.text
        lead = {"city": "Алматы", "phone": "+77015553322", "timeframe": "срочно"}
        event = await assign(db, settings_of(nurture), utcnow(), **lead)
        [handed] = await eventually(lambda: bodies(rep_box), timeout=20)
    assert handed["type"] == "lead.hot" and handed["data"]["lead_id"] == str(event.lead_id)
    hand_off = await hand_off_of(db, event.lead_id)
    assert hand_off is not None and hand_off["rep_id"] == uuid.UUID(rep["id"])
