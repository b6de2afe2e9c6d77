"""The rules' timeframe vocabulary per language (words and phrases, units, number words, month
names, phrases meaning no timeframe), folded and ordered for matching."""

from dataclasses import dataclass

from services.scoring.wording import fold


@dataclass(frozen=True)
class Lexicon:
    """The vocabulary of the rules, folded and ordered for matching."""

    words: dict[str, dict[str, int | str]]  # language -> folded phrase -> days or anchor
    units: dict[str, tuple[tuple[str, int], ...]]  # language -> (stem, days), longest first
    numbers: dict[str, dict[str, float]]  # language -> number word -> value
    months: dict[str, tuple[tuple[str, ...], ...]]  # language -> the forms of each month, January first
    unknown: dict[str, tuple[str, ...]]  # language -> phrases meaning "no timeframe"

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


def lexicon(
    words: dict[str, dict[str, int | str]],
    units: dict[str, dict[str, int]],
    numbers: dict[str, dict[str, float]],
    months: dict[str, list[str]],
    unknown: dict[str, list[str]],
) -> Lexicon:
    def longest_first(pairs: dict[str, int]) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(((fold(k), v) for k, v in pairs.items()), key=lambda p: -len(p[0])))

    return Lexicon(
        words={lang: {fold(k): v for k, v in entries.items()} for lang, entries in words.items()},
        units={lang: longest_first(entries) for lang, entries in units.items()},
        numbers={lang: {fold(k): v for k, v in entries.items()} for lang, entries in numbers.items()},
        months={lang: tuple(tuple(m.split("|")) for m in names) for lang, names in months.items()},
        unknown={lang: tuple(fold(p) for p in phrases) for lang, phrases in unknown.items()},
    )
