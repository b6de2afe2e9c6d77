"""Personal data and credentials kept out of logs and error texts: email addresses and phone
numbers in any text (an error from the database quotes the row it refused; an SMTP server, the
recipient), and a token after `Bearer` or in a credential's header (an HTTP client's error may
quote the request's headers), are replaced before the text is logged, put in a dead-letter
header or an event."""

import re

REDACTED = "[redacted]"
_EMAIL = re.compile(r"[\w.%+-]+@[\w.-]*")  # a truncated address too (aruzhan@exa...)
# International numbers (+7 701 555 0101, +77015550101) and long runs of digits (87015550101),
# but not the digits inside an id (a UUID's last group, a hex digest).
_PHONE = re.compile(r"(?<![\w-])(?:\+\d[\d ().-]{6,}\d|\d{10,15})(?![\w-])")
# `Bearer <token>`, and the value of a header that is a credential however it is quoted
# (`Authorization: …`, `'X-Source-Key': '…'`, `x-telegram-bot-api-secret-token=…`).
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[^\s'\",;)}\]]{8,}")
_CREDENTIAL_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|x-source-key|x-api-key|x-telegram-bot-api-secret-token)"
    r"(['\"]?\s*[:=]\s*['\"]?)(?!bearer\b|basic\b)[^\s'\",;)}\]]+"
)


def redact(text: str) -> str:
    text = _CREDENTIAL_HEADER.sub(rf"\1\2{REDACTED}", _BEARER.sub(rf"\1 {REDACTED}", text))
    return _PHONE.sub(REDACTED, _EMAIL.sub(REDACTED, text))


def describe(error: BaseException, limit: int = 500) -> str:
    """`Type: message` of an error, with personal data redacted, at most `limit` characters."""
    return redact(f"{type(error).__name__}: {error}")[:limit]
