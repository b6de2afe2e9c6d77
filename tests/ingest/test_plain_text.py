"""A person's words arrive without direction controls or invisible ends: a name holding a
right-to-left override (U+202E) reordered the rest of the line a rep reads, the company and the
phone after it shown backwards; a right-to-left mark a phone's keyboard put before a name
stayed in it ("\\u200fNurlan")."""

import httpx
import pytest

from services.ingest.normalize import plain_text
from tests.conftest import ADMIN
from tests.helpers import create_source, post_lead

OVERRIDE, MARK, ISOLATE, POP_ISOLATE = "\u202e", "\u200f", "\u2067", "\u2069"


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        (f"{OVERRIDE}Nurlan", "Nurlan"),
        (f"{MARK}Nurlan{MARK} ", "Nurlan"),
        (f"{ISOLATE}Qazaq Tea{POP_ISOLATE}", "Qazaq Tea"),
        ("\ufeff Аружан\u200b", "Аружан"),
        ("می\u200cخواهم", "می\u200cخواهم"),  # Persian needs its zero-width non-joiner
        ("👩\u200d💻 Aygerim", "👩\u200d💻 Aygerim"),  # an emoji's joiner stays
        ("  Plain ascii  ", "Plain ascii"),
        ("\x1c\x1fPlain ascii\x1e", "Plain ascii"),  # every blank str.isspace knows
    ],
)
def test_plain_text_drops_direction_controls_and_invisible_ends(typed: str, kept: str) -> None:
    assert plain_text(typed) == kept


async def test_a_lead_is_stored_without_direction_controls(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    answer = await post_lead(
        ingest,
        key,
        phone="+77015551234",
        first_name=f"{OVERRIDE}Nurlan",
        company=f"{ISOLATE}Qazaq Tea{POP_ISOLATE}",
        message=f"{MARK}Call me{OVERRIDE} after 6",
    )
    assert answer.status_code == 202, answer.text
    lead = (await ingest.get(f"/v1/leads/{answer.json()['lead_id']}", headers=ADMIN)).json()
    attributes = lead["attributes"]
    assert (attributes["first_name"], attributes["company"]) == ("Nurlan", "Qazaq Tea")
    assert attributes["message"] == "Call me after 6"


async def test_a_name_of_nothing_visible_is_refused_as_empty(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    answer = await post_lead(ingest, key, phone="+77015551235", first_name=f"{MARK}{OVERRIDE}")
    assert answer.status_code == 422
    assert [(e["field"], e["type"]) for e in answer.json()["errors"]] == [("first_name", "string_too_short")]
