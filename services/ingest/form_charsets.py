"""A form on a page that is not UTF-8. A browser sends a form in its page's charset, and many
older sites in the region still serve windows-1251 (Russian and Kazakh) or windows-1254
(Azerbaijani in Latin letters); a letter the charset lacks (Kazakh қ, Azerbaijani ə) goes as a
numeric reference, `&#1179;`. Read as UTF-8, such a post's name and message were question
marks. A urlencoded body that is UTF-8, as every page of today sends, is read as before."""

import codecs
import re
from urllib.parse import parse_qsl, unquote_to_bytes

LEGACY_CHARSET = {"az": "cp1254", "tr": "cp1254"}  # else cp1251: ru, kk, and any other
NUMERIC_REFERENCE = re.compile(r"&#(?:([0-9]{1,7})|[xX]([0-9a-fA-F]{1,6}));")


def is_utf8(body: bytes) -> bool:
    """Whether the urlencoded body's escaped bytes are UTF-8."""
    try:
        unquote_to_bytes(body.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def legacy_charset(content_type: str, languages: list[str]) -> str:
    """The charset a post that is not UTF-8 was sent in: the one its Content-Type names, if
    Python knows it; else the legacy charset of the first language named (the source's, then
    the visitor's browser's)."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            try:
                return codecs.lookup(value.strip().strip('"')).name
            except LookupError:
                break
    for language in languages:
        if language:
            return LEGACY_CHARSET.get(language.split("-")[0].lower(), "cp1251")
    return "cp1251"


def legacy_fields(body: bytes, charset: str, max_fields: int) -> list[tuple[str, str]]:
    """The fields of a urlencoded body sent in `charset`, the letters it had no byte for
    (sent as `&#NNNN;`) restored."""
    pairs = parse_qsl(
        body.decode("latin-1"),
        keep_blank_values=True,
        encoding=charset,
        errors="replace",
        max_num_fields=max_fields,
    )
    return [(_restored(name), _restored(value)) for name, value in pairs]


def _restored(text: str) -> str:
    return NUMERIC_REFERENCE.sub(_character, text)


def _character(match: re.Match[str]) -> str:
    decimal, hexadecimal = match.groups()
    code = int(decimal) if decimal else int(hexadecimal, 16)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF or code < 0x20:
        return match.group(0)
    return chr(code)
