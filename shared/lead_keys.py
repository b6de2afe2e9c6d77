"""Lead keys: ingest's, asked for by the consumers that open events, or brought by a ring.

A hot lead's classification rings the hand-off lane with the lead's key beside it, so the lane
opens it without asking ingest (its key request was the longest wait on a hot lead's way). A
ring is a PostgreSQL NOTIFY, which any role of the database may listen to: the key goes in it
sealed under the admin token, the credential that lets a service ask ingest for it anyway."""

import asyncio
import base64
import contextlib
from collections import OrderedDict
from collections.abc import Iterable
from uuid import UUID

import aiohttp
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import outgoing
from shared.db import Database, defer_notify, kept
from shared.doorbell import channel_of
from shared.outgoing import post
from shared.redact import describe
from shared.sealing import SecretBox


def key_ring_box(token: str) -> SecretBox:
    """What seals a lead's key for a ring (see the module's docstring): the admin token's."""
    return SecretBox("lead-keys.ring:" + token)


KEYS_BELL = "lead-keys"  # ingest's commits ring it with the keys of the leads they sealed events of
# Per transaction: every lead of a group commit of single captures (`GroupCommitter.max_group`).
# At 8, a group of more under load (300 leads/s) sent its other new leads the broker's way,
# where scoring waited for the relay, its fetch and ingest's key: 300/s p99 222-1,321 ms over
# ten runs on one stack, against 169-380 at 128. A larger transaction (an import's) is asked
# for in bulk past them, as before.
RUNG_KEYS_AT_MOST = 128
_RUNG_KEYS = "leadflow.rung_keys"


_RING_BOX = "leadflow.key_ring_box"


def ring_keys(db: Database, token: str) -> None:
    """Have `ring_key` ring in this process's transactions (ingest's, which holds the keys)."""
    db.kept[_RING_BOX] = key_ring_box(token)


def sealed_for_ring(session: AsyncSession, lead_id: UUID, key: bytes) -> str | None:
    """The lead's key sealed under the admin token (`key_ring_box`), for a ring of this
    transaction: an urgent consumer of the lead's events then has it before they come. Once per
    lead, for the first RUNG_KEYS_AT_MOST leads of a transaction; None past them, or where
    `ring_keys` was not called."""
    box: SecretBox | None = kept(session).get(_RING_BOX)
    rung: set[UUID] = session.info.setdefault(_RUNG_KEYS, set())
    if box is None or lead_id in rung or len(rung) >= RUNG_KEYS_AT_MOST:
        return None
    rung.add(lead_id)
    return box.seal(base64.b64encode(key).decode())


def ring_key(session: AsyncSession, lead_id: UUID, sealed: str) -> None:
    """Ring KEYS_BELL, as the transaction commits, with the lead's key (`sealed_for_ring`)."""
    defer_notify(session, channel_of(KEYS_BELL), f"{lead_id} {sealed}")


class LeadKeys:
    """Ingest's lead keys, asked for over HTTP in batches and remembered (a bounded cache);
    an unknown key means the lead was erased (or never existed).

    `warm` asks for keys ahead, in the background, as leads are captured: the urgent work that
    opens events about them later (a hot lead's hand-off) then finds the key at hand. A key
    already being asked for is waited for, never asked for twice."""

    def __init__(self, ingest_url: str, token: str, cached: int = 20_000) -> None:
        self.ingest_url, self.cached = ingest_url.rstrip("/"), cached
        self._auth = {"Authorization": f"Bearer {token}"}
        self._keys: OrderedDict[UUID, bytes] = OrderedDict()
        self._asked: dict[UUID, asyncio.Future[None]] = {}  # being fetched
        self._warming: set[asyncio.Task[None]] = set()
        self._forgotten: set[UUID] = set()
        self._client: aiohttp.ClientSession | None = None
        self._ring = key_ring_box(token)

    def learn_from_key_ring(self, said: str) -> None:
        """`learn_from_ring` for what a ring of KEYS_BELL says (`ring_key`)."""
        lead, _, sealed = said.partition(" ")
        with contextlib.suppress(ValueError):
            self.learn_from_ring(UUID(lead), sealed)

    def learn_from_ring(self, lead_id: UUID, sealed: str) -> None:
        """Keep the key a ring brought (sealed by `key_ring_box`); one that does not open is
        ignored (the key is asked for as usual)."""
        try:
            key = base64.b64decode(self._ring.open(sealed))
        except ValueError:
            return
        if lead_id not in self._forgotten:
            self._keep({lead_id: key})

    async def of(self, lead_ids: Iterable[UUID]) -> dict[UUID, bytes]:
        """The keys of the leads that still have one. Raises ConnectionError (an outage: the
        caller retries) when ingest cannot answer."""
        wanted = set(lead_ids)
        found = {lead: key for lead in wanted if (key := self._keys.get(lead)) is not None}
        asked = {lead: self._asked[lead] for lead in wanted - found.keys() if lead in self._asked}
        found |= await self._fetch_all(sorted(wanted - found.keys() - asked.keys(), key=str))
        if asked:  # by `warm`: wait for its answer (and ask again for what it did not bring)
            futures = set(asked.values())
            await asyncio.gather(*(asyncio.shield(f) for f in futures), return_exceptions=True)
            failed = {lead for lead, future in asked.items() if future.exception() is not None}
            found |= {lead: key for lead in asked.keys() - failed if (key := self._keys.get(lead))}
            found |= await self._fetch_all(sorted(failed, key=str))
        return found

    async def _fetch_all(self, lead_ids: list[UUID]) -> dict[UUID, bytes]:
        found: dict[UUID, bytes] = {}
        for start in range(0, len(lead_ids), MAX_KEYS_PER_REQUEST):
            found |= await self._fetch(lead_ids[start : start + MAX_KEYS_PER_REQUEST])
        return found

    def warm(self, lead_ids: Iterable[UUID]) -> None:
        """Ask for these leads' keys in the background (a failure is forgotten: `of` asks again)."""
        # Looked up one by one: `set - dict.keys()` walks (and hashes) every key cached.
        wanted = set(lead_ids)
        missing = sorted(
            (lead for lead in wanted if lead not in self._keys and lead not in self._asked), key=str
        )
        if not missing:
            return
        task = asyncio.create_task(self._warm(missing[:MAX_KEYS_PER_REQUEST]))
        self._warming.add(task)
        task.add_done_callback(self._warming.discard)

    def warm_from(self, said: str) -> None:
        """`warm` for the leads a doorbell's ring names (lead ids, comma-separated)."""
        lead_ids = []
        for text in said.split(",")[:MAX_KEYS_PER_REQUEST]:
            with contextlib.suppress(ValueError):
                lead_ids.append(UUID(text))
        self.warm(lead_ids)

    async def _warm(self, lead_ids: list[UUID]) -> None:
        with contextlib.suppress(ConnectionError):
            await self._fetch(lead_ids)

    def forget(self, lead_ids: Iterable[UUID]) -> None:
        for lead in lead_ids:
            self._keys.pop(lead, None)
            if lead in self._asked:
                self._forgotten.add(lead)  # erased while its key was being asked for: not kept

    async def _fetch(self, lead_ids: list[UUID]) -> dict[UUID, bytes]:
        asked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._asked |= dict.fromkeys(lead_ids, asked)
        try:
            keys = await self._request(lead_ids)
        except BaseException:
            asked.set_exception(ConnectionError("the keys were not given"))
            asked.exception()  # retrieved: whoever waited asks again
            raise
        finally:
            for lead in lead_ids:
                if self._asked.get(lead) is asked:
                    del self._asked[lead]
            erased = self._forgotten.intersection(lead_ids)
            self._forgotten -= erased
        asked.set_result(None)
        kept = {lead: key for lead, key in keys.items() if lead not in erased}
        self._keep(kept)
        return kept

    def _keep(self, keys: dict[UUID, bytes]) -> None:
        for lead, key in keys.items():
            self._keys[lead] = key
            self._keys.move_to_end(lead)
        while len(self._keys) > self.cached:
            self._keys.popitem(last=False)

    async def _request(self, lead_ids: list[UUID]) -> dict[UUID, bytes]:
        # aiohttp, not httpx: a request per consumer batch, and httpx's client cost about
        # twice the CPU per request (as for webhooks, services/nurture/webhooks.py).
        if self._client is None:
            self._client = aiohttp.ClientSession(
                connector=outgoing.connector(), headers=self._auth, timeout=aiohttp.ClientTimeout(total=5.0)
            )
        body = {"lead_ids": [str(i) for i in lead_ids]}
        try:
            async with post(self._client, f"{self.ingest_url}/v1/lead-keys:fetch", json=body) as response:
                if response.status >= 400:
                    raise ConnectionError(f"ingest did not give the lead keys: it answered {response.status}")
                answer = await response.json()
        except (aiohttp.ClientError, TimeoutError) as error:
            # Its type and text, never its repr: aiohttp's errors of an answer carry the request,
            # and its repr the headers, the admin token with them (it reached the logs).
            raise ConnectionError(f"ingest did not give the lead keys: {describe(error)}") from error
        return {UUID(lead): base64.b64decode(key) for lead, key in answer["keys"].items()}

    async def close(self) -> None:
        for task in self._warming:
            task.cancel()
        await asyncio.gather(*self._warming, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None


MAX_KEYS_PER_REQUEST = 1000
