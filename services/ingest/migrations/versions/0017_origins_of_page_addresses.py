"""A source's `allowed_origins` entry that is a page's address (`https://shop.kz/contact`, as a
marketer copies it from the browser's bar) is kept as its origin (`https://shop.kz`): it was
kept whole, matched no browser's `Origin`, and the form refused every visitor. New entries are
read so when a source is created or changed (`source_schemas.web_origin`); this does it to the
ones stored before. They were stored as pydantic wrote a URL, the host lower-cased and a default
port dropped already: only what follows the host goes (and a user name before it).

Revision ID: 0017
Revises: 0016
"""

import json
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def origin(entry: str) -> str:
    try:
        parts = urlsplit(entry)
    except ValueError:
        return entry
    host = parts.netloc.rpartition("@")[2].lower()
    if parts.scheme.lower() not in ("http", "https") or not host:
        return entry
    return f"{parts.scheme.lower()}://{host}"


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, allowed_origins FROM sources WHERE allowed_origins <> '[]'"))
    for source_id, entries in rows.fetchall():
        origins = list(dict.fromkeys(origin(entry) for entry in entries))
        if origins != entries:
            bind.execute(
                sa.text("UPDATE sources SET allowed_origins = CAST(:origins AS jsonb) WHERE id = :id"),
                {"origins": json.dumps(origins), "id": source_id},
            )


def downgrade() -> None:
    pass  # the page addresses are not kept; an origin is what they meant
