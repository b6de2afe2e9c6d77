"""The encodings an uploaded CSV is read in: UTF-8 unless a byte order mark names another
(Excel's "Unicode text" is UTF-16 with one) or the user names one (Excel's "CSV" is in the
locale's code page: Windows-1251 in Russian and Kazakh, Windows-1254 in Azerbaijani). Never
guessed from the bytes: Windows-1251 text reads as valid Windows-1254, and the other way."""

import codecs
import re
from typing import IO

# The encodings a user may name, and the codec each is read with (UTF-8's skips its BOM).
ENCODINGS = {"utf-8": "utf-8-sig", "utf-16": "utf-16", "cp1251": "cp1251", "cp1254": "cp1254"}
NAMES = {"utf-8": "UTF-8", "utf-16": "UTF-16", "cp1251": "Windows-1251", "cp1254": "Windows-1254"}
_ALIASES = {"utf8": "utf-8", "windows-1251": "cp1251", "windows-1254": "cp1254"}
# A byte order mark names the encoding whatever was given: the file says what it is.
_MARKS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))

GIVE_ENCODING = (
    "or name the encoding it was saved in (`encoding=cp1251` for a Russian- or Kazakh-locale"
    " Excel's CSV, `cp1254` for an Azerbaijani one; `leadflow import --encoding cp1251`)"
)
NOT_UTF8 = f"is not UTF-8 text: save the file as UTF-8 (CSV UTF-8 in Excel), {GIVE_ENCODING}"
NOT_DECODED = "is not {name} text, the encoding the file was read in: save the file as UTF-8, {give}"

# A byte the encoding could not decode, kept in the text as U+DC00 plus the byte, as
# surrogateescape does (for bytes below 0x80 too, which UTF-16 can leave undecoded: an odd
# last byte, half of a surrogate pair), so only the row holding it is refused.
UNDECODED = re.compile("[\udc00-\udcff]")
UNDECODED_BYTES = "leadflow.undecoded"


def _kept_undecoded(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "".join(chr(0xDC00 + byte) for byte in error.object[error.start : error.end]), error.end


codecs.register_error(UNDECODED_BYTES, _kept_undecoded)


def encoding_named(name: str) -> str:
    """The encoding a user named (`cp1251`, `Windows-1251`, `UTF-8`), as ENCODINGS keys it;
    ValueError naming the ones there are for any other."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ENCODINGS:
        raise ValueError(f"must be one of {', '.join(ENCODINGS)} (a file with a byte order mark needs none)")
    return key


def read_in_of(raw: IO[bytes], given: str | None) -> str:
    """The encoding the file is read in (an ENCODINGS key): the one its byte order mark names,
    else the one given, else UTF-8. The file is left at its start."""
    start = raw.read(3)
    raw.seek(0)
    marked = next((name for mark, name in _MARKS if start.startswith(mark)), None)
    return marked or given or "utf-8"


def codec_of(encoding: str) -> str:
    return ENCODINGS[encoding]


def not_text(encoding: str) -> tuple[str, str]:
    """Why bytes `encoding` could not decode are refused, and the type of the fault."""
    if encoding == "utf-8":
        return NOT_UTF8, "not_utf8"
    return NOT_DECODED.format(name=NAMES[encoding], give=GIVE_ENCODING), "not_decodable"
