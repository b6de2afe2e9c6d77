"""Building a follow-up email: one line per header whatever a lead typed, RFC 2047 subjects,
links kept whole."""

import email
from email import policy
from email.policy import SMTPUTF8

from services.nurture.email_messages import WIRE_POLICY, plain_email

LINK = "https://leadflow.example/v1/unsubscribe?lead_id=6446a73c&token=" + "t" * 43


def built(subject: str, to: str = "aru@example.kz") -> tuple[bytes, email.message.EmailMessage]:
    message = plain_email(
        sender="Leadflow <hello@example.kz>",
        to=to,
        subject=subject,
        body="Сәлеметсіз бе!\n",
        headers={"List-Unsubscribe": f"<{LINK}>", "Content-Language": "kk"},
    )
    raw = message.as_bytes(policy=WIRE_POLICY)
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return raw, parsed


def test_a_line_break_in_a_lead_field_starts_no_header() -> None:
    raw, parsed = built("Thank you, Ann\r\nBcc: everyone@example.kz", to="aru@example.kz\nCc: x@example.kz")
    assert parsed["Bcc"] is None and parsed["Cc"] is None
    assert parsed["Subject"] == "Thank you, Ann Bcc: everyone@example.kz"
    assert b"\nBcc:" not in raw and b"\nCc:" not in raw


def test_a_long_kazakh_subject_is_folded_into_short_encoded_words() -> None:
    subject = "Рақмет, Аружан! Сізге және Qazaq Trade компанияңызға не ұсына алатынымыз туралы"
    raw, parsed = built(subject)
    assert parsed["Subject"] == subject
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    words = [w for line in head.split(b"\r\n") for w in line.split() if w.startswith(b"=?")]
    assert len(words) > 1 and all(len(w) <= 75 for w in words)  # RFC 2047 section 2


def test_the_unsubscribe_link_stays_whole_and_the_body_is_utf8() -> None:
    _, parsed = built("Hi")
    assert parsed["List-Unsubscribe"] == f"<{LINK}>"
    assert parsed["Content-Language"] == "kk"
    assert parsed.get_content_charset() == "utf-8"
    assert parsed.get_content() == "Сәлеметсіз бе!\n"


def test_an_address_beyond_ascii_gets_raw_utf8_headers_for_smtputf8() -> None:
    to = "Ərtoğrul.Məmmədov@bakı-example.az"
    message = plain_email(
        sender="hello@example.kz",
        to=to,
        subject="Təşəkkür\nBcc: x@example.kz",
        body="Salam\n",
        headers={"Content-Language": "az"},
    )
    raw = message.as_bytes(policy=SMTPUTF8)
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert f"To: {to}".encode() in raw  # not an RFC 2047 word: SMTPUTF8 servers read it as is
    assert parsed["Subject"] == "Təşəkkür Bcc: x@example.kz" and parsed["Bcc"] is None
    assert parsed["Content-Language"] == "az"
