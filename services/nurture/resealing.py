"""After LEADFLOW_SECRET_KEY changes (the old key kept in LEADFLOW_SECRET_KEY_PREVIOUS), nurture
seals the signing secrets again with the new key as it starts: reps' and subscriptions', and
those a rotation keeps for its overlap (`shared.resealing`). Once that start has logged it,
the old key can go."""

from collections.abc import Awaitable, Callable

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.models import Rep, WebhookEndpoint
from shared.db import Database
from shared.http import NotReady
from shared.resealing import reseal_columns, unopened_secrets
from shared.sealing import SecretBox

SEALED: dict[Table, tuple[str, ...]] = {
    Rep.__table__: ("webhook_secret", "previous_webhook_secret"),  # type: ignore[attr-defined]
    WebhookEndpoint.__table__: ("secret", "previous_secret"),  # type: ignore[attr-defined]
}

# the secrets that sign what nurture sends now (a rotated-out one signs only for its overlap)
SIGNING: dict[Table, tuple[str, ...]] = {
    Rep.__table__: ("webhook_secret",),  # type: ignore[attr-defined]
    WebhookEndpoint.__table__: ("secret",),  # type: ignore[attr-defined]
}


async def reseal_secrets(db: Database, box: SecretBox) -> int:
    """Seal again with the current key every stored signing secret it did not seal; returns how many."""
    return await reseal_columns(db, box, SEALED, "signing secrets")


UNOPENED = (
    "stored secrets do not open with this LEADFLOW_SECRET_KEY: {count} reps' and subscriptions'"
    " signing secrets, so no webhook to them can be signed (hot leads go to the dead letters,"
    " acknowledge links fail). Give nurture the key that sealed them (under `make run`"
    " .leadflow/secret.key, else LEADFLOW_SECRET_KEY; a key changed: the old one in"
    " LEADFLOW_SECRET_KEY_PREVIOUS), or give each a new secret (rotate-secret)"
)


def signing_secrets_check(db: Database, box: SecretBox) -> Callable[[], Awaitable[None]]:
    """/readyz's "secrets": NotReady naming the cause while a signing secret does not open."""

    async def check() -> None:
        async with db.transaction() as session:
            count = await unopened_signing_secrets(session, box)
        if count:
            raise NotReady(UNOPENED.format(count=count))

    return check


async def unopened_signing_secrets(reader: AsyncSession | AsyncConnection, box: SecretBox) -> int:
    """Reps' and subscriptions' signing secrets `box` does not open: their webhooks cannot be
    signed, and every hot lead for such a rep goes to the dead letters."""
    return await unopened_secrets(reader, box, SIGNING)
