# ruff: noqa: RUF001, RUF002, RUF003  (Cyrillic and Azerbaijani in the endings are the point here)
"""A whole name, as one field gives it, split into the lead's first and last name (pure).

A plain name field (`name`, `Имя`, `full name`, `Ad soyad`) is written first name first: its
first word is the first name, the rest the last name. A ФИО field (`ФИО`, `Ф.И.О.`, `fio`) is
written Фамилия Имя Отчество, surname first: "Иванова Анна Сергеевна" was split as that, and
every template greeted "Здравствуйте, Иванова!". People fill it in their own order too ("Анна
Сергеевна Иванова"), so the surname is the word that looks like one when exactly one does:

- a surname's ending, in Cyrillic or Latin and any letter case: Russian and Kazakh -ов/-ова,
  -ев/-ева, -ёв/-ёва, -ский/-ская, -цкий/-цкая, -ых/-их, Kazakh -ұлы/-қызы (-uly, -kyzy,
  -qyzy), Azerbaijani -ov/-ova, -yev/-yeva, -zadə/-zade; these are strong. -ин/-ина, -in/-ina
  and Azerbaijani -li/-lı/-lu/-lü (-ли, -лы, -лу, -лү) end given names too (Марина, Ali, Kevin):
  they are weak, and count only when no word has a strong ending. So "Марина Иванова" is
  Иванова, and "Марина Ильина", where both are weak, goes by the order below;
- with at least two letters before the ending (Ева, Нина and Əli are given names);
- never a patronymic: a Russian one after the first word (-ович, -евич, -ич, -овна, -евна,
  -ична: "Сергеевна", and a -вич first is a surname, Карпович), a word with oğlu/qızı, оглы/
  кызы after it ("Əli oğlu"), or a Kazakh -ұлы/-қызы after the first of three words or more
  ("Сейтқали Аружан Нұрланқызы": the patronymic; "Нұрланұлы Ерлан": the surname).

A common given name with a weak ending (Ирина, Марина, Алина, Kevin) looks like no surname.

Else the order says it: the first word is the surname (ФИО), unless a patronymic follows it
(Имя Отчество: "Анна Сергеевна" has no surname, "Анна Сергеевна Ким" has Ким) or it is a
common given name ("Ирина Ким"). The first name is every other word in its order, the
patronymic kept after the name as people are addressed ("Анна Сергеевна", "Rəşid Əli oğlu");
one word alone is a first name.

A plain name field filled surname first, as people fill a single "Имя" field with their ФИО
("Иванова Анна Сергеевна": a patronymic, or a first word alone with a surname's strong ending),
is split as a ФИО field; and a name typed all in lowercase ("иванова анна") is capitalized, so
nobody is greeted "Здравствуйте, иванова!"."""

import re
from typing import NamedTuple


class Name(NamedTuple):
    first_name: str
    last_name: str | None


_WORD_BREAK = re.compile(r"[\s,]+")
_MIN_STEM = 2  # letters before the ending
_STRONG, _WEAK, _NONE = 2, 1, 0
_SURNAME_ENDINGS = (
    (
        _STRONG,
        (
            *("ов", "ова", "ев", "ева", "ёв", "ёва", "ский", "ская", "цкий", "цкая", "ых", "их"),
            *("ұлы", "қызы", "улы", "кызы", "заде", "зада"),
            *("ov", "ova", "ev", "eva", "yev", "yeva", "sky", "skiy", "skii", "skaya", "tskiy", "tskaya"),
            *("uly", "kyzy", "qyzy", "zadə", "zade", "zada"),
        ),
    ),
    (_WEAK, ("ин", "ина", "ли", "лы", "лу", "лү", "in", "ina", "li", "lı", "lu", "lü")),
)
_RUSSIAN_PATRONYMIC = ("вич", "ич", "вна", "ична", "vich", "vna", "ichna")  # -ович, -евич, Ильич, -ична
_KAZAKH_PATRONYMIC = ("ұлы", "қызы", "улы", "кызы", "uly", "kyzy", "qyzy")  # joined: Нұрланқызы
# A word of its own after the father's name: Azerbaijani "Əli oğlu", "Əli qızı", and as Russian
# documents write it, "Али оглы", "Али кызы"; Kazakh "Нұрлан ұлы" too.
# Given names that end as surnames weakly do (-ина, -ин, -in, -ina): common enough in the
# region to be met every day in a form.
_GIVEN_NAMES = frozenset(
    {
        *("ирина", "марина", "алина", "карина", "галина", "полина", "кристина", "ангелина"),
        *("валентина", "екатерина", "регина", "элина", "мадина", "дина", "зарина", "арина", "эвелина"),
        *("irina", "marina", "alina", "karina", "galina", "polina", "kristina", "angelina"),
        *("valentina", "ekaterina", "yekaterina", "regina", "elina", "madina", "zarina", "arina"),
        *("kevin", "martin", "justin", "robin", "edwin", "marvin", "colin", "benjamin", "кевин", "мартин"),
    }
)
_PATRONYMIC_MARKERS = frozenset(
    {"oğlu", "oglu", "ogly", "qızı", "qizi", "gizi", "оглы", "оглу", "кызы", "гызы", "ұлы", "қызы", "улы"}
)


def _plain(word: str) -> str:
    return word.replace("İ", "i").casefold()  # Azerbaijani's capital dotted İ: MƏMMƏDLİ


def _has_ending(word: str, endings: tuple[str, ...]) -> bool:
    plain = _plain(word)
    return any(
        plain.endswith(ending) and sum(c.isalpha() for c in plain[: -len(ending)]) >= _MIN_STEM
        for ending in endings
    )


def surname_likeness(word: str) -> int:
    """How much a word looks like a surname: 2 (a strong ending), 1 (a weak one) or 0 (none, or
    a common given name); each part of a double surname counts (Петрова-Водкина, Мамин-Сибиряк)."""
    if _plain(word) in _GIVEN_NAMES:
        return _NONE
    return max(
        (
            strength
            for part in word.split("-")
            for strength, endings in _SURNAME_ENDINGS
            if _has_ending(part, endings)
        ),
        default=_NONE,
    )


def _given(word: str) -> bool:
    return _plain(word) in _GIVEN_NAMES


def _patronymic(words: list[str]) -> set[int]:
    """The places of the words that make a patronymic."""
    found: set[int] = set()
    for at, word in enumerate(words[1:], start=1):
        if _plain(word) in _PATRONYMIC_MARKERS:
            found |= {at - 1, at}
        elif _has_ending(word, _RUSSIAN_PATRONYMIC) or (
            len(words) >= 3 and _has_ending(word, _KAZAKH_PATRONYMIC)
        ):
            found.add(at)
    return found


def _surname_at(words: list[str]) -> int | None:
    patronymic = _patronymic(words)
    others = [at for at in range(len(words)) if at not in patronymic]
    likeness = {at: surname_likeness(words[at]) for at in others}
    for strength in (_STRONG, _WEAK):
        alike = [at for at in others if likeness[at] == strength]
        if len(alike) == 1:
            return alike[0]
        if alike:
            break  # several look like one: the order tells
    if not others:
        return None
    if others[0] + 1 in patronymic or _given(words[others[0]]):  # Имя [Отчество] Фамилия
        return others[1] if len(others) > 1 else None
    return others[0]


def split_fio(text: str) -> Name:
    """A ФИО field's value as first and last name: "Иванова Анна Сергеевна" and "Анна Сергеевна
    Иванова" are both Анна Сергеевна, Иванова."""
    words = [word for word in _WORD_BREAK.split(text) if word]
    if len(words) < 2:
        return Name(words[0] if words else text.strip(), None)
    at = _surname_at(words)
    if at is None:
        return Name(" ".join(words), None)
    return Name(" ".join(words[:at] + words[at + 1 :]), words[at])


def split_name(text: str) -> Name:
    """A plain name field's value: the first word is the first name, the rest the last name;
    unless it reads surname first (a patronymic in it, or only its first word with a surname's
    strong ending: "Иванова Анна Сергеевна", "Петров Иван"), split as a ФИО then."""
    words = [word for word in _WORD_BREAK.split(text) if word]
    if len(words) >= 2 and _surname_first(words):
        return split_fio(text)
    first, *rest = text.split(maxsplit=1) or [text]
    return Name(first, rest[0].strip() if rest else None)


def _surname_first(words: list[str]) -> bool:
    if _patronymic(words):
        return True
    strong = [at for at, word in enumerate(words) if surname_likeness(word) == _STRONG]
    given = [at for at, word in enumerate(words) if _given(word)]
    return strong == [0] or (bool(given) and given[0] > 0 and not strong)


def capitalized(text: str) -> str:
    """A name typed all in lowercase with each part's first letter capital ("анна-мария ким":
    "Анна-Мария Ким"); one with any capital letter stays as typed; an Azerbaijani name's i
    is İ."""
    if not text.islower():
        return text
    dotted = any(letter in text for letter in "əğı")
    return _NAME_START.sub(lambda m: _upper(m.group(0), dotted), text)


_NAME_START = re.compile(r"(?<![^\W\d_])[^\W\d_]")  # a letter after no letter


def _upper(letter: str, dotted: bool) -> str:
    return "İ" if dotted and letter == "i" else letter.upper()
