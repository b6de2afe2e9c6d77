"""What a message sent TO the person (email, SMS, messenger) may say of what a visitor typed.
Pure, no I/O.

Anyone can post a public form with a stranger's address and a "name" such as "you won
500 000 ₸! Claim it: http://prize.example": the company's own sender then wrote it to the
stranger (found by a review). So such a message takes a name only when it looks like one,
and none of the free text a visitor types (need, message, company, city...): a template's
placeholder naming it reads as nothing, and its optional `[...]` part is left out (`fill`).
A call task is for the rep, who sees everything the lead gave.
"""

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

LONGEST_NAME = 40
MOST_WORDS = 4
_NAME_MARKS = frozenset(" -'’ʼ.")  # noqa: RUF001 (typographic apostrophes are in names)
# Values that are not free text, each in the one shape the product writes it (ingest checks
# them): a placeholder naming one shows it. An E.164 phone, a call window, a birthday.
_SHAPES = {
    "phone": re.compile(r"\+?\d{5,15}"),
    "call_window": re.compile(r"\d{1,2}:\d{2}(:\d{2})?-\d{1,2}:\d{2}(:\d{2})?"),
    "birthday": re.compile(r"(\d{4}|-)-\d{2}-\d{2}"),
    "temperature": re.compile(r"[a-z_]{1,30}"),
    "stage": re.compile(r"[a-z_]{1,30}"),
}
NAMES = ("first_name", "last_name")


def for_the_person(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The lead's fields that a message to the person may quote: a first and last name that
    look like names, and the values in `_SHAPES` written as the product writes them."""
    kept: dict[str, Any] = {}
    for name in NAMES:
        if isinstance(value := fields.get(name), str) and looks_like_a_name(value):
            kept[name] = value.strip()
    for name, shape in _SHAPES.items():
        if isinstance(value := fields.get(name), str) and shape.fullmatch(value):
            kept[name] = value
    return kept


def looks_like_a_name(text: str) -> bool:
    """Letters of any script with their marks, spaces, hyphens, apostrophes and an initial's
    dots, in a few words: "Аружан", "Rəşad", "Anne-Marie", "O'Neil", "J.R. Smith". Not a
    digit, a line break, a URL, an address or a domain (a dot before two letters: `prize.kz`)."""
    name = text.strip()
    if not name or len(name) > LONGEST_NAME or len(name.split()) > MOST_WORDS:
        return False
    if not unicodedata.category(name[0]).startswith("L"):
        return False
    if not all(unicodedata.category(c)[0] in "LM" or c in _NAME_MARKS for c in name):
        return False
    # After a dot in a word comes nothing, or one letter (another initial): a domain's last
    # part has two letters at least.
    return not any(_letters(after) > 1 for word in name.split() for after in word.split(".")[1:])


def _letters(text: str) -> int:
    return sum(unicodedata.category(c).startswith("L") for c in text)
