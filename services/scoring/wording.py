# ruff: noqa: RUF001  (Cyrillic and Latin look-alikes are the point here)
"""Text as people type it, made comparable: case, Kazakh and Azerbaijani letters typed on a
Russian or Latin keyboard, Latin letters slipped into a Cyrillic word, accents. Pure.

"Қоңырау шалыңыз", "коныррау", "qońyraý", "zəng edin" and "zeng edin" all fold to plain
letters, so one phrase in the rules matches every way a person may write it."""

import re
import unicodedata
from functools import lru_cache

# Letters that people without the layout type as their nearest plain letter.
_PLAIN = str.maketrans(
    {
        # Kazakh Cyrillic -> Russian Cyrillic
        "ә": "а",
        "ғ": "г",
        "қ": "к",
        "ң": "н",
        "ө": "о",
        "ұ": "у",
        "ү": "у",
        "һ": "х",
        "і": "и",
        "ё": "е",
        # Azerbaijani and Kazakh Latin -> ASCII
        "ə": "e",
        "ı": "i",
        "ş": "s",
        "ç": "c",
        "ğ": "g",
        "ö": "o",
        "ü": "u",
        "ń": "n",
        "ǵ": "g",
        "á": "a",
        "ó": "o",
        "ú": "u",
        "ý": "y",
    }
)
# Latin letters that look like Cyrillic ones, for a word that is mostly Cyrillic.
_TO_CYRILLIC = str.maketrans("aeopcxykmthb", "аеорсхукмтнв")
_WORD = re.compile(r"\w+")
_CYRILLIC = re.compile(r"[а-яё]")
_LATIN = re.compile(r"[a-z]")


@lru_cache(maxsize=2048)
def fold(text: str) -> str:
    """Lower case, plain letters, one script per word, spaces collapsed (remembered: a lead's
    texts are read again with each of its events)."""
    text = unicodedata.normalize("NFC", text).lower().translate(_PLAIN)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _WORD.sub(_one_script, text)
    return " ".join(text.split())


def _one_script(match: re.Match[str]) -> str:
    word = match.group()
    if _LATIN.search(word) and _CYRILLIC.search(word):
        cyrillic = len(_CYRILLIC.findall(word))
        if cyrillic >= len(_LATIN.findall(word)):
            return word.translate(_TO_CYRILLIC)
    return word


@lru_cache(maxsize=1024)
def phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """Whole words or phrases in folded text: "vp" matches "VP Sales", not "mvp". A phrase
    ending in `*` is a stem: "перезвон*" matches "перезвоните" and "перезвонить"."""
    alternatives = []
    for phrase in sorted({p.strip() for p in phrases if p.strip()}, key=len, reverse=True):
        stem = phrase.endswith("*")
        core = re.escape(fold(phrase.rstrip("*")))
        if core:
            alternatives.append(core + (r"\w*" if stem else ""))
    if not alternatives:
        return None
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)")


def find_phrase(text: str, phrases: tuple[str, ...]) -> str | None:
    """The first of `phrases` found in `text` (already folded), as it stands there."""
    pattern = phrase_pattern(phrases)
    match = pattern.search(text) if pattern is not None else None
    return match.group() if match else None


_TOKEN = re.compile(r"\S+")
_AROUND = re.compile(r"^\W+|\W+$")


@lru_cache(maxsize=2048)
def as_written(text: str, phrase: str) -> str:
    """The words of `text` that fold to `phrase` (found in `fold(text)`), as the person wrote
    them: «қазір», not "казир"; «zəng edin», not "zeng edin". A reason quoting the person must
    quote them. Punctuation around the words goes; the folded phrase when they are not found."""
    spans = [match.span() for match in _TOKEN.finditer(text)]
    folded = [fold(text[start:end]) for start, end in spans]
    wanted = re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)")
    words = len(phrase.split())
    for first in range(len(spans)):
        for last in range(first, min(first + words + 1, len(spans))):
            joined = " ".join(folded[first : last + 1])
            found = wanted.search(joined)
            # the words only: found from within the first token to within the last
            if found and found.start() < len(folded[first]) and found.end() > len(joined) - len(folded[last]):
                written = text[spans[first][0] : spans[last][1]]
                return _AROUND.sub("", written) or written
    return phrase
