"""The token of a rep's acknowledge link: an HMAC of the lead and rep under the rep's signing
secret, proof that the caller received this rep's webhook. A webhook sent again (a retry, a
redelivery) carries the token of the secret that signs it then: after a rotation the one it was
queued with may no longer count, and the rep could not take on a lead first sent to them after it."""

import base64
import hashlib
import hmac
import json
from uuid import UUID


def token(secret: str, rep_id: UUID, lead_id: UUID) -> str:
    message = f"acknowledge.{lead_id}.{rep_id}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def with_current_token(body: str, secret: str, rep_id: UUID, lead_id: UUID) -> str:
    """`body` (a rep's webhook as queued) with its acknowledge link's token made with `secret`,
    the rep's signing secret now; a body with no such link as it is."""
    try:
        parsed = json.loads(body)
        link = parsed["data"]["acknowledge"]["body"]
    except (ValueError, KeyError, TypeError):
        return body
    if not isinstance(link, dict) or "token" not in link:
        return body
    current = token(secret, rep_id, lead_id)
    if link["token"] == current:
        return body
    link["token"] = current
    return json.dumps(parsed)
