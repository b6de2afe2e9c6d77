"""The channels a touch goes by: email over SMTP, SMS and messenger texts through their
providers' HTTP APIs; and the lead's preferred channel among them."""

import asyncio
import contextlib
import socket
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.mime.text import MIMEText
from email.utils import formatdate, parseaddr
from typing import Any, Literal

import aiohttp
import aiosmtplib
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import Default, SMTPStatus

from services.nurture.config import NurtureSettings
from services.nurture.email_messages import INTERNATIONAL_WIRE_POLICY, WIRE_POLICY, plain_email
from services.nurture.models import Touch
from services.nurture.retries import retry_after_seconds
from services.nurture.text_messages import to_the_person
from services.nurture.unsubscribe_links import short_unsubscribe_url, unsubscribe_url
from shared.events import utcnow
from shared.faults import drop_traceback
from shared.languages import Language, say
from shared.outgoing import post

# Said in each EHLO. Left to aiosmtplib, it is looked up again (in a thread) for every email.
LOCAL_HOSTNAME = socket.getfqdn()


class SendFailed(Exception):
    pass


class InDoubt(SendFailed):
    """An email whose data the SMTP server took without a final reply: it may have left, so it
    is not sent again (the touch fails)."""


class Permanent(SendFailed):
    """Sending it again cannot help (a 5xx to the address, no address at all, a provider that
    refuses the message): the touch fails at once, and the relay's reputation is spared."""


class RetryLater(SendFailed):
    """The provider asked to be tried again after `seconds` (429 or 503 with Retry-After)."""

    def __init__(self, reason: str, seconds: float) -> None:
        super().__init__(reason)
        self.seconds = seconds


class Untried(SendFailed):
    """An email that never reached the SMTP server (no session of ours came free in time): not
    an attempt."""


IN_DOUBT_AFTER_DATA = (
    "in doubt: the SMTP server took this email's data but gave no final reply ({}); not sent"
    " again, so that nobody gets it twice"
)


def preferred_channel(channel: str, fields: dict[str, Any]) -> str:
    """A message goes by the lead's preferred channel when they named one we can use."""
    preferred = fields.get("preferred_channel") or (fields.get("custom") or {}).get("preferred_channel")
    if channel in ("email", "sms", "messenger") and preferred in ("email", "sms", "messenger"):
        return str(preferred)
    return channel


async def send_email(
    settings: NurtureSettings,
    touch: Touch,
    fields: dict[str, Any],
    subject: str,
    body: str,
    language: Language,
    sessions: asyncio.Semaphore,
) -> None:
    """Over one of `sessions`: the SMTP sessions this sender may hold open at once (a relay
    answers 421 to more than it allows)."""
    to = fields.get("email")
    if not to:
        raise Permanent("the lead has no email address")
    link = unsubscribe_url(settings, touch.lead_id)
    message = plain_email(
        sender=settings.email_from,
        to=to,
        subject=subject or "A note from us",
        body=f"{body}\n\n--\n{say('unsubscribe_footer', language)}: {link}\n",
        headers={
            "Date": formatdate(usegmt=True),
            "Message-ID": f"<{touch.id}@{message_id_domain(settings.email_from)}>",
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Content-Language": language,
        },
    )
    # Done with room left in the claim to record it: a claim that lapsed meanwhile could be taken again.
    ends = (touch.lease_until or utcnow()) - timedelta(seconds=settings.webhook_timeout_seconds)
    try:
        async with asyncio.timeout((ends - utcnow()).total_seconds()):
            await sessions.acquire()
    except TimeoutError:
        raise Untried("no SMTP session came free before the touch's claim ran out") from None
    if (ends - utcnow()).total_seconds() < 1.0:  # one came free too late to use
        sessions.release()
        raise Untried("no SMTP session came free before the touch's claim ran out")
    try:
        await _send_over_smtp(settings, message, to, ends)
    finally:
        sessions.release()


def message_id_domain(sender: str) -> str:
    """The From address's domain, for the right of each Message-ID (a bare `leadflow`, with no
    dot, is what spam filters flag)."""
    domain = parseaddr(sender)[1].rpartition("@")[2]
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    return domain if "." in domain else "leadflow.invalid"


async def _send_over_smtp(
    settings: NurtureSettings, message: MIMEText | EmailMessage, to: str, ends: datetime
) -> None:
    """Hand the email to the SMTP server by `ends`, in SMTPUTF8 when an address is not ASCII.
    Until its data has gone, a failure leaves the server nothing: SendFailed, and it goes
    again. After, no final reply or a lost connection is InDoubt: the server may have it."""
    sender = parseaddr(settings.email_from)[1]
    international = not (sender.isascii() and to.isascii())
    left = (ends - utcnow()).total_seconds()
    smtp = _StagedSMTP(
        reply_seconds=settings.smtp_reply_timeout_seconds,
        ends_at=asyncio.get_running_loop().time() + left,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        local_hostname=LOCAL_HOSTNAME,
        timeout=settings.webhook_timeout_seconds,
        start_tls=False,
    )
    try:
        async with asyncio.timeout(left):
            await smtp.connect()
            await smtp.sendmail(
                sender,
                [to],
                message.as_bytes(policy=INTERNATIONAL_WIRE_POLICY if international else WIRE_POLICY),
                mail_options=["SMTPUTF8"] if international else None,
            )
    except (aiosmtplib.SMTPException, OSError) as error:  # TimeoutError too
        smtp.close()
        doubt = smtp.data_sent and not isinstance(error, aiosmtplib.SMTPResponseException)
        reason = str(error) or "no answer in time"
        drop_traceback(error)
        refused = _for_good(error)
        kind = InDoubt if doubt else Permanent if refused else SendFailed  # 550 user unknown: for good
        raise kind(IN_DOUBT_AFTER_DATA.format(reason) if doubt else f"SMTP: {reason}") from None
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):  # it has gone, whatever QUIT gets
        await smtp.quit(timeout=max(0.0, min(settings.webhook_timeout_seconds, smtp.seconds_left())))
    smtp.close()


def _for_good(error: BaseException) -> bool:
    """A 5xx: to the address (550 user unknown: every recipient refused so), or to the mail."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(r.code >= 500 for r in error.recipients)
    return isinstance(error, aiosmtplib.SMTPResponseException) and error.code >= 500


class _StagedSMTP(aiosmtplib.SMTP):
    """aiosmtplib's client, telling whether the message data went (`data_sent`), and waiting
    for the final reply after it up to `reply_seconds` (RFC 5321 4.5.3.2.6 allows a server
    10 minutes; content filters take their time), never past `ends_at` (the loop's clock)."""

    def __init__(self, *, reply_seconds: float, ends_at: float, **options: Any) -> None:
        super().__init__(**options)
        self.reply_seconds, self.ends_at, self.data_sent = reply_seconds, ends_at, False

    def seconds_left(self) -> float:
        return self.ends_at - asyncio.get_running_loop().time()

    async def data(
        self, message: str | bytes, /, *, timeout: float | Literal[Default.token] | None = Default.token
    ) -> SMTPResponse:
        start = await self.execute_command(b"DATA", timeout=timeout)
        if start.code != SMTPStatus.start_input:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        if self.protocol is None or self.seconds_left() < 1.0:  # no time to wait for the reply
            raise aiosmtplib.SMTPServerDisconnected("no time left to wait for the final reply")
        content = message.encode("ascii") if isinstance(message, str) else message
        self.protocol.write(PERIOD_REGEX.sub(b"..", normalize_message_line_endings(content)) + b".\r\n")
        self.data_sent = True
        reply = await self.protocol.read_response(timeout=min(self.reply_seconds, self.seconds_left()))
        if reply.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        return reply


def _refused(channel: str, status: int, retry_after: str | None) -> SendFailed:
    """A provider's answer: asked to wait (429, 503 with Retry-After, in seconds or until a date:
    at most a day), refused for good (another 4xx but a timeout or conflict), or failed for now."""
    reason = f"{channel} provider answered {status}"
    wait = retry_after_seconds(retry_after, utcnow()) if status in (429, 503) else None
    if wait is not None:
        return RetryLater(reason, min(wait, 86_400.0))
    if 400 <= status < 500 and status not in (408, 409, 425, 429):
        return Permanent(reason)
    return SendFailed(reason)


async def send_message(
    settings: NurtureSettings,
    http: aiohttp.ClientSession | None,
    touch: Touch,
    channel: str,
    fields: dict[str, Any],
    body: str,
    language: Language,
) -> None:
    """A text through the channel's provider, once: a repeat carries the same Idempotency-Key.
    It names the sender and ends with the lead's unsubscribe link (`text_messages`)."""
    url = settings.sms_url if channel == "sms" else settings.messenger_url
    to = fields.get("phone") if channel == "sms" else fields.get("messenger") or fields.get("phone")
    if not url:
        raise Permanent(f"no {channel} provider configured")
    if not to:
        raise Permanent(f"the lead has no contact for {channel}")
    assert http is not None
    link = short_unsubscribe_url(settings, touch.lead_id)
    text = to_the_person(body, settings.sender_name, language, link)
    payload = {"to": to, "text": text, "touch_id": str(touch.id)}
    once = {"Idempotency-Key": str(touch.id)}
    try:
        async with post(http, url, json=payload, headers=once, allow_redirects=False) as response:
            if response.status >= 300:
                raise _refused(channel, response.status, response.headers.get("Retry-After"))
    except (aiohttp.ClientError, TimeoutError) as error:
        reason = f"{channel} provider: {error}"
        drop_traceback(error)
        raise SendFailed(reason) from None
