"""Lead keys asked for ahead (`LeadKeys.warm`): the consumer that needs a key later finds it at
hand or waits for the request already made, never asks twice; a failed or erased ask is not
kept. Against a real HTTP server standing in for ingest's /v1/lead-keys:fetch."""

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiohttp import web

from services.nurture.app import create_hand_off_app
from services.nurture.config import NurtureSettings
from shared.doorbell import carrying, channel_of
from shared.embedded import free_port
from shared.events import Envelope
from shared.lead_keys import LeadKeys, key_ring_box
from shared.personal import new_key
from shared.topics import HOT_LEADS_BELL
from tests.conftest import Servers, eventually


@dataclass
class KeyServer:
    """Answers with the keys it holds; `hold` keeps answers back until set; `fail` answers 503."""

    keys: dict[str, bytes] = field(default_factory=dict)
    asked: list[list[str]] = field(default_factory=list)
    hold: asyncio.Event = field(default_factory=asyncio.Event)
    fail: int = 0
    answer_then_erase: str = ""  # a lead whose key goes once it was answered

    async def fetch(self, request: web.Request) -> web.Response:
        wanted = (await request.json())["lead_ids"]
        self.asked.append(wanted)
        await self.hold.wait()
        if self.fail:
            self.fail -= 1
            return web.Response(status=503)
        found = {lead: base64.b64encode(self.keys[lead]).decode() for lead in wanted if lead in self.keys}
        self.keys.pop(self.answer_then_erase, None)
        return web.json_response({"keys": found})


@pytest.fixture
async def ingest() -> AsyncIterator[tuple[KeyServer, LeadKeys]]:
    server = KeyServer()
    server.hold.set()
    app = web.Application()
    app.router.add_post("/v1/lead-keys:fetch", server.fetch)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    keys = LeadKeys(f"http://127.0.0.1:{port}", "token")
    try:
        yield server, keys
    finally:
        await keys.close()
        await runner.cleanup()


def a_lead(server: KeyServer) -> tuple[uuid.UUID, bytes]:
    lead, key = uuid.uuid4(), new_key()
    server.keys[str(lead)] = key
    return lead, key


async def test_a_warmed_key_is_at_hand(ingest: tuple[KeyServer, LeadKeys]) -> None:
    server, keys = ingest
    lead, key = a_lead(server)
    keys.warm([lead])
    await eventually(lambda: server.asked)
    assert await keys.of([lead]) == {lead: key}
    assert await keys.of([lead]) == {lead: key}
    assert server.asked == [[str(lead)]], "asked once, ahead"


async def test_a_key_being_asked_for_is_waited_for_not_asked_again(
    ingest: tuple[KeyServer, LeadKeys],
) -> None:
    server, keys = ingest
    server.hold.clear()
    lead, key = a_lead(server)
    other, other_key = a_lead(server)
    keys.warm([lead])
    await eventually(lambda: server.asked)
    wanted = asyncio.create_task(keys.of([lead, other]))
    await eventually(lambda: len(server.asked) == 2)  # only `other` is new
    server.hold.set()
    assert await wanted == {lead: key, other: other_key}
    assert sorted(server.asked) == sorted([[str(lead)], [str(other)]])


async def test_a_failed_warm_is_asked_again_when_needed(ingest: tuple[KeyServer, LeadKeys]) -> None:
    server, keys = ingest
    server.hold.clear()
    server.fail = 1
    lead, key = a_lead(server)
    keys.warm([lead])
    await eventually(lambda: server.asked)
    wanted = asyncio.create_task(keys.of([lead]))
    server.hold.set()
    assert await wanted == {lead: key}
    assert server.asked == [[str(lead)], [str(lead)]]


async def test_a_lead_erased_while_its_key_is_asked_for_is_not_kept(
    ingest: tuple[KeyServer, LeadKeys],
) -> None:
    server, keys = ingest
    server.hold.clear()
    lead, _ = a_lead(server)
    keys.warm([lead])
    await eventually(lambda: server.asked)
    keys.forget([lead])  # the erasure went by meanwhile (ingest deleted the key before)
    server.answer_then_erase = str(lead)
    server.hold.set()
    assert await keys.of([lead]) == {}, "the key answered before the erasure is not used"


@pytest.mark.parametrize("answer", [web.Response(status=503), web.Response(text="<html>proxy</html>")])
async def test_a_refused_ask_for_keys_names_what_ingest_answered_never_the_token(
    answer: web.Response,
) -> None:
    """What the consumer logs of a failed ask (its database down, a token being rotated, a
    proxy's page): aiohttp's error of an answer quoted the request's headers, the admin token."""
    token = "s3cret-admin-token-of-this-test"

    async def refuse(_: web.Request) -> web.Response:
        return answer

    app = web.Application()
    app.router.add_post("/v1/lead-keys:fetch", refuse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    keys = LeadKeys(f"http://127.0.0.1:{port}", token)
    try:
        with pytest.raises(ConnectionError) as refused:
            await keys.of([uuid.uuid4()])
    finally:
        await keys.close()
        await runner.cleanup()
    told = f"{refused.value!r} {refused.value}"
    assert token not in told
    assert "503" in told if answer.status == 503 else "ContentTypeError" in told


async def test_the_leads_a_doorbell_ring_names_are_warmed(ingest: tuple[KeyServer, LeadKeys]) -> None:
    server, keys = ingest
    (first, first_key), (second, second_key) = a_lead(server), a_lead(server)
    keys.warm_from(f"{first},not-a-lead,{second}")
    await eventually(lambda: len(server.asked) == 1)
    assert sorted(server.asked[0]) == sorted([str(first), str(second)])
    assert await keys.of([first, second]) == {first: first_key, second: second_key}
    assert len(server.asked) == 1  # at hand: not asked again


async def test_a_key_a_ring_brought_sealed_is_at_hand_and_a_forged_one_is_ignored(
    ingest: tuple[KeyServer, LeadKeys],
) -> None:
    server, keys = ingest
    (rung_lead, rung_key), (forged_lead, forged_key) = a_lead(server), a_lead(server)
    keys.learn_from_ring(rung_lead, key_ring_box("token").seal(base64.b64encode(rung_key).decode()))
    keys.learn_from_ring(
        forged_lead, key_ring_box("not the token").seal(base64.b64encode(new_key()).decode())
    )
    keys.learn_from_ring(forged_lead, "not sealed at all")
    assert await keys.of([rung_lead]) == {rung_lead: rung_key}
    assert server.asked == []  # at hand: ingest was not asked
    assert await keys.of([forged_lead]) == {forged_lead: forged_key}  # asked for, as usual
    assert server.asked == [[str(forged_lead)]]


async def test_nurtures_hand_off_hears_the_hot_lead_bell_asks_for_keys_and_takes_what_rang(
    servers: Servers, ingest: tuple[KeyServer, LeadKeys]
) -> None:
    """As scoring's relay rings the bell (its rows' leads in the ring), before the lane fetches."""
    server, keys = ingest
    lead, _ = a_lead(server)
    # A doorbell, as under `leadflow dev` (consumers that pause when idle wait for it)
    settings = servers.settings(NurtureSettings, ingest_url=keys.ingest_url, consumer_idle_pause_seconds=1)
    runtime = create_hand_off_app(settings).state.runtime
    [lane] = runtime.consumers
    lane.news.clear()
    assert runtime.doorbell is not None
    listening = asyncio.create_task(runtime.doorbell.run())
    ringer = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        await eventually(lane.news.is_set)  # listening: a doorbell wakes everyone as it connects
        await ringer.execute("SELECT pg_notify($1, $2)", channel_of(HOT_LEADS_BELL), str(lead))
        await eventually(lambda: server.asked == [[str(lead)]])
        # What scoring's commit rings with (the classification itself) goes to the lane's queue.
        classified = Envelope(type="lead.classified", lead_id=lead, correlation_id=lead, producer="scoring")
        said = classified.to_bytes().decode()
        await ringer.execute("SELECT pg_notify($1, $2)", channel_of(carrying(HOT_LEADS_BELL)), said)
        await eventually(lambda: lane._rung.qsize() == 1)
        assert lane._rung.get_nowait() == classified
        # With its key beside it, sealed (scoring's ring): the lane does not ask ingest.
        other, other_key = uuid.uuid4(), new_key()  # a lead ingest would not even know
        sealed = key_ring_box(settings.admin_token_value).seal(base64.b64encode(other_key).decode())
        hot = Envelope(type="lead.classified", lead_id=other, correlation_id=other, producer="scoring")
        said = f"{sealed}\n{hot.to_bytes().decode()}"
        await ringer.execute("SELECT pg_notify($1, $2)", channel_of(carrying(HOT_LEADS_BELL)), said)
        await eventually(lambda: lane._rung.qsize() == 1)
        assert lane._rung.get_nowait() == hot
        assert await lane.keys.of([other]) == {other: other_key}
        assert server.asked == [[str(lead)]]
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await ringer.close()
        await runtime.stop()


async def test_a_key_ingests_ring_names_is_at_hand(ingest: tuple[KeyServer, LeadKeys]) -> None:
    server, keys = ingest
    (lead, key), (other, other_key) = a_lead(server), a_lead(server)
    keys.learn_from_key_ring(f"{lead} {key_ring_box('token').seal(base64.b64encode(key).decode())}")
    keys.learn_from_key_ring(f"not-a-lead {key_ring_box('token').seal(base64.b64encode(other_key).decode())}")
    assert await keys.of([lead]) == {lead: key}
    assert server.asked == []
    assert await keys.of([other]) == {other: other_key}  # the ring named no lead: asked for
