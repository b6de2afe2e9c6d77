"""The channels a touch goes by: email over SMTP, SMS and messenger texts through their
providers' HTTP APIs; and the lead's preferred channel among them."""

import base64
import hashlib
import hmac
import socket
from email.message import EmailMessage
from email.mime.text import MIMEText
from email.utils import formatdate, parseaddr
from typing import Any
from uuid import UUID

import aiohttp
import aiosmtplib

from services.nurture.config import NurtureSettings
from services.nurture.email_messages import INTERNATIONAL_WIRE_POLICY, WIRE_POLICY, plain_email
from services.nurture.models import Touch
from shared.faults import drop_traceback
from shared.languages import Language, say
from shared.outgoing import post

# Said in each EHLO. Left to aiosmtplib, it is looked up again (in a thread) for every email.
LOCAL_HOSTNAME = socket.getfqdn()


class SendFailed(Exception):
    pass


def unsubscribe_token(key: bytes, lead_id: UUID) -> str:
    digest = hmac.new(key, f"unsubscribe.{lead_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def unsubscribe_url(settings: NurtureSettings, lead_id: UUID) -> str:
    token = unsubscribe_token(settings.unsubscribe_key, lead_id)
    return f"{settings.public_url}/v1/unsubscribe?lead_id={lead_id}&token={token}"


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
) -> None:
    to = fields.get("email")
    if not to:
        raise SendFailed("the lead has no email address")
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
    await _send_over_smtp(settings, message, to)


def message_id_domain(sender: str) -> str:
    """The From address's domain, for the right of each Message-ID (a bare `leadflow`, with no
    dot, is what spam filters flag)."""
    domain = parseaddr(sender)[1].rpartition("@")[2]
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    return domain if "." in domain else "leadflow.invalid"


async def _send_over_smtp(settings: NurtureSettings, message: MIMEText | EmailMessage, to: str) -> None:
    """Hand the email to the SMTP server, in SMTPUTF8 when an address is not ASCII."""
    sender = parseaddr(settings.email_from)[1]
    international = not (sender.isascii() and to.isascii())
    try:
        await aiosmtplib.send(
            message.as_bytes(policy=INTERNATIONAL_WIRE_POLICY if international else WIRE_POLICY),
            sender=sender,
            recipients=[to],
            mail_options=["SMTPUTF8"] if international else None,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            local_hostname=LOCAL_HOSTNAME,
            timeout=settings.webhook_timeout_seconds,
            start_tls=False,
        )
    except (aiosmtplib.SMTPException, OSError) as error:
        reason = f"SMTP: {error}"
        drop_traceback(error)
        raise SendFailed(reason) from None


async def send_message(
    settings: NurtureSettings,
    http: aiohttp.ClientSession | None,
    touch: Touch,
    channel: str,
    fields: dict[str, Any],
    body: str,
) -> None:
    """A text through the channel's provider, once: a repeat carries the same Idempotency-Key."""
    url = settings.sms_url if channel == "sms" else settings.messenger_url
    to = fields.get("phone") if channel == "sms" else fields.get("messenger") or fields.get("phone")
    if not url:
        raise SendFailed(f"no {channel} provider configured")
    if not to:
        raise SendFailed(f"the lead has no contact for {channel}")
    assert http is not None
    payload = {"to": to, "text": body, "touch_id": str(touch.id)}
    once = {"Idempotency-Key": str(touch.id)}
    try:
        async with post(http, url, json=payload, headers=once, allow_redirects=False) as response:
            if response.status >= 300:
                raise SendFailed(f"{channel} provider answered {response.status}")
    except (aiohttp.ClientError, TimeoutError) as error:
        reason = f"{channel} provider: {error}"
        drop_traceback(error)
        raise SendFailed(reason) from None
