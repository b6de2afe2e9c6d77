"""The signed unsubscribe link of a lead: the email's, and the short one ending every SMS and
messenger text. Pure, no I/O; the page they open is unsubscribe_routes."""

import base64
import hashlib
import hmac
from uuid import UUID

from services.nurture.config import NurtureSettings


def unsubscribe_token(key: bytes, lead_id: UUID) -> str:
    digest = hmac.new(key, f"unsubscribe.{lead_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def unsubscribe_url(settings: NurtureSettings, lead_id: UUID) -> str:
    token = unsubscribe_token(settings.unsubscribe_key, lead_id)
    return f"{settings.public_url}/v1/unsubscribe?lead_id={lead_id}&token={token}"


# A text's link (`/v1/u/<lead><token>`), 44 characters after `/v1/u/`, not the email's 110: an
# SMS in Cyrillic holds 70. The lead's id in base64url (22), then the first 22 characters (132
# bits) of the same signature the email's link carries.
SHORT_LEAD = 22


def short_unsubscribe_token(key: bytes, lead_id: UUID) -> str:
    return unsubscribe_token(key, lead_id)[:SHORT_LEAD]


def short_unsubscribe_url(settings: NurtureSettings, lead_id: UUID) -> str:
    lead = base64.urlsafe_b64encode(lead_id.bytes).decode().rstrip("=")
    return f"{settings.public_url}/v1/u/{lead}{short_unsubscribe_token(settings.unsubscribe_key, lead_id)}"


def short_link_lead(code: str) -> UUID | None:
    """The lead a short link's code names, or None (cut, altered)."""
    try:
        return UUID(bytes=base64.urlsafe_b64decode(code[:SHORT_LEAD] + "=="))
    except ValueError:
        return None
