"""What a service process is made of: database, publisher, relay, consumers, loops; its HTTP app
is `shared.service_app`."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from shared.consumer import ConsumerRunner, Handler, Lane, LaneRunner
from shared.db import Database
from shared.doorbell import Doorbell, carrying
from shared.faults import raise_hidden_stop
from shared.inbox import purge_inbox
from shared.journal import purge_journal
from shared.kafka import Publisher
from shared.lead_keys import KEYS_BELL, LeadKeys
from shared.loops import Loop, name_of, run_for_good
from shared.memory import give_back_large_blocks
from shared.migrations import SchemaBehind
from shared.observability import Telemetry
from shared.relay import OutboxRelay
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)
SCHEMA_POLL_SECONDS = 2.0
SCHEMA_SAID_EVERY = 60.0


GC_FIRST_GENERATION = 50_000


def tune_garbage_collector(first_generation: int = GC_FIRST_GENERATION) -> None:
    """Services allocate many short-lived objects per event; Python's default (a collection
    every 700 allocations) spent about a fifth of scoring's time scanning. Objects alive at
    start-up (modules, the app) are frozen out of every scan, and collections run less often
    (once `first_generation` more container objects are alive than at the last one).
    Measured with `make bench`: scoring 2,837 -> 3,526 events/s."""
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(first_generation, second, third)


class ServiceRuntime:
    """The long-lived parts of one service instance, started and stopped by the app's lifespan."""

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        *,
        needs_broker: bool = True,
        gc_first_generation: int = GC_FIRST_GENERATION,
    ) -> None:
        self.name = name
        self.needs_broker = needs_broker
        self.gc_first_generation = gc_first_generation  # see `tune_garbage_collector`
        self.settings = settings
        self.telemetry = Telemetry(name)
        self.db = Database(settings.database_url, name, settings.db_pool_size)
        self.publisher = Publisher(settings.kafka_bootstrap, f"leadflow-{name}", settings.kafka_security)
        self.relay = OutboxRelay(
            self.db.direct_connection(),
            self.publisher,
            self.telemetry,
            settings.outbox_poll_seconds,
            check_seconds=settings.relay_check_seconds,
            replication=settings.kafka_replication_factor,
        )
        self.db.after_commit("outbox", self.relay.wake)
        self.consumers: list[ConsumerRunner] = []
        self.lead_keys: LeadKeys | None = None
        self.doorbell: Doorbell | None = None
        if settings.consumer_idle_pause_seconds:
            self.doorbell = Doorbell(self.db.direct_connection())
        self._loops: list[Loop] = [self.relay.run]
        self._at_start: list[tuple[Loop, str]] = []
        # Raises SchemaBehind while `migrate` has not brought the schema to this release
        # (`shared.migrations.schema_check`; the app sets it): the loops wait for it.
        self.schema_check: Callable[[], Awaitable[None]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        journal = timedelta(days=settings.journal_retention_days)
        self.add_periodic("journal purge", 3600, lambda: purge_journal(self.db, journal))

    def consume(
        self,
        group: str,
        topics: Sequence[str],
        handlers: Mapping[str, Handler],
        *,
        archive: bool = False,
        personal: bool = False,
        lane: Lane | None = None,
        warm_keys_on: Sequence[str] = (),
        urgent: bool = False,
        rung_by: str | None = None,
        parallel_partitions: int = 1,
    ) -> None:
        """Apply `topics` with `handlers`; `archive`: keep every event for good and offer rebuilds;
        `personal`: the handlers need the person, so sealed parts are opened (ingest's keys);
        `lane`: urgent work, applied also by a consumer of its own that never waits behind the rest;
        `warm_keys_on`: event types whose leads' keys are asked for as they go by, before the
        lane needs them (personal only); `urgent`: on a hot lead's way to its rep, so it fetches
        with the short wait (a lane always does); `rung_by`: a bell whose rings carry events
        for these handlers (`shared.topics.NEW_LEADS_BELL`), applied as they ring;
        `parallel_partitions`: a batch's partitions applied in this many transactions at once,
        for handlers that write nothing two leads share (`shared.consumer.ConsumerRunner`)."""
        s = self.settings
        self._want_keys(personal)
        runner = ConsumerRunner(
            group=group,
            topics=topics,
            handlers=handlers,
            max_attempts=s.consumer_max_attempts,
            archive=archive,
            news=self.doorbell.heard(topics) if self.doorbell is not None else None,
            warm_keys_on=frozenset(warm_keys_on),
            parallel_partitions=parallel_partitions,
            **self._runner_settings(personal, urgent),
        )
        self._add_runners(runner)
        if personal and urgent and self.lead_keys is not None:
            # ingest's commits ring the keys of the leads they sealed events of: at hand when
            # the events come (a consumer on a hot lead's way; the others ask in bulk)
            self._listening().on_ring(KEYS_BELL, self.lead_keys.learn_from_key_ring)
        if rung_by is not None:
            self._listening().on_ring(carrying(rung_by), runner.heard)
        if lane is not None:
            self.consume_lane(group, lane, personal=personal)
        if not archive and len(self.consumers) == 1 + (lane is not None):
            retention = timedelta(days=s.inbox_retention_days)
            self.add_periodic("inbox purge", 3600, lambda: purge_inbox(self.db, retention))

    @property
    def dead_lettering(self) -> list[ConsumerRunner]:
        """The consumers that keep what they cannot apply (a lane leaves that to its main one)."""
        return [c for c in self.consumers if not isinstance(c, LaneRunner)]

    def consume_lane(self, group: str, lane: Lane, *, personal: bool = False) -> None:
        """Only the lane of `group`'s consumer (`consume(..., lane=)` runs both): for a process of
        its own, beside one that runs the consumer without it."""
        self._want_keys(personal)
        bells = [lane.bell] if lane.bell else lane.topics
        news = self.doorbell.heard(bells) if self.doorbell is not None else None
        runner = LaneRunner(
            group=f"{group}-lane",
            topics=lane.topics,
            lane=lane,
            news=news,
            **self._runner_settings(personal, urgent=True),
        )
        if lane.bell and self.doorbell is not None:
            self.doorbell.on_ring(carrying(lane.bell), runner.heard)
            if runner.keys is not None:
                self.doorbell.on_ring(lane.bell, runner.keys.warm_from)
        self._add_runners(runner)

    def _want_keys(self, personal: bool) -> None:
        if personal and self.lead_keys is None:
            self.lead_keys = LeadKeys(self.settings.ingest_url, self.settings.admin_token_value)

    def _runner_settings(self, personal: bool, urgent: bool = False) -> dict[str, Any]:
        s = self.settings
        return {
            "db": self.db,
            "telemetry": self.telemetry,
            "bootstrap": s.kafka_bootstrap,
            "security": s.kafka_security,
            "fetch_wait_ms": s.kafka_fetch_wait_ms if urgent else s.kafka_background_fetch_wait_ms,
            "session_timeout_ms": s.kafka_session_timeout_ms,
            "batch_size": s.consumer_batch_size,
            "keys": self.lead_keys if personal else None,
            "idle_pause_seconds": s.consumer_idle_pause_seconds,
            "recheck_seconds": s.consumer_recheck_seconds,
            "pause_when_caught_up": urgent,
            "gather_seconds": 0.0 if urgent else s.consumer_gather_seconds,
        }

    def heard(self, bells: Sequence[str]) -> asyncio.Event:
        """Set when a commit rings one of `bells` (`shared.doorbell.ring_in`), in any process
        that shares the database; the caller clears it."""
        return self._listening().heard(bells)

    def _listening(self) -> Doorbell:
        """The doorbell, made if there was none, and listened to."""
        if self.doorbell is None:
            self.doorbell = Doorbell(self.db.direct_connection())
        self._listen()
        return self.doorbell

    def _listen(self) -> None:
        if self.doorbell is not None and self.doorbell.run not in self._loops:
            self._loops.append(self.doorbell.run)

    def _add_runners(self, *runners: ConsumerRunner) -> None:
        self._listen()
        self.consumers.extend(runners)
        self._loops.extend(r.run for r in runners)

    def add_loop(self, loop: Loop) -> None:
        """A background loop run for the life of the process (it must handle its own errors;
        one that ends all the same is started again: `run_for_good`)."""
        self._loops.append(loop)

    def at_start(self, work: Loop, name: str) -> None:
        """Work done once, in the background, when the service starts (cancelled at shutdown
        like the loops); unlike a loop, it is not started again when it is done."""
        self._at_start.append((work, name))

    def add_periodic(self, what: str, every_seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        """Housekeeping run every `every_seconds` for the life of the process; a failure is
        logged and tried again at the next turn."""

        async def repeat() -> None:
            while True:
                await asyncio.sleep(every_seconds)  # a periodic job, not synchronisation
                try:
                    if result := await job():
                        log.info("%s: %s", what, result)
                except Exception as error:
                    raise_hidden_stop(error)
                    log.warning("%s failed, next try in %.0fs: %r", what, every_seconds, error)

        self._loops.append(repeat)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run one piece of background work (an import, say); cancelled at shutdown like the loops."""
        task = asyncio.create_task(work, name=f"{self.name}:{name}")
        self._tasks.append(task)
        task.add_done_callback(lambda done: self._tasks.remove(done) if done in self._tasks else None)

    async def start(self) -> None:
        tune_garbage_collector(self.gc_first_generation)
        give_back_large_blocks()
        self._tasks = []
        if self.schema_check is None:
            self._start_work()
        else:
            self.spawn(self._start_when_migrated(self.schema_check), "waiting for its schema")

    def _start_work(self) -> None:
        for loop in self._loops:
            name = f"{self.name}: {name_of(loop)}"
            self._tasks.append(asyncio.create_task(run_for_good(name, loop), name=name))
        for work, name in self._at_start:
            self.spawn(work(), name)

    async def _start_when_migrated(self, check: Callable[[], Awaitable[None]]) -> None:
        """The consumers, relays and loops once the schema is this release's: a part restarted
        on new code (a `git pull` under `make run`) before `migrate` ran applied events with
        statements the old schema refused, and dead-lettered them for good (found by a review).
        A database not reachable yet is no reason to wait: the loops wait for it themselves."""
        said_at: float | None = None
        while True:
            try:
                await check()
            except SchemaBehind as behind:
                now = asyncio.get_running_loop().time()
                if said_at is None or now - said_at >= SCHEMA_SAID_EVERY:
                    log.error("%s: the schema is %s; its consumers and loops wait for it", self.name, behind)
                    said_at = now
                await asyncio.sleep(SCHEMA_POLL_SECONDS)  # polling the schema's version
                continue
            except Exception as error:
                raise_hidden_stop(error)
            break
        if said_at is not None:
            log.warning("%s: the schema is migrated; its consumers and loops start", self.name)
        self._start_work()

    async def stop(self, timeout: float = 10.0) -> None:
        """Cancel the loops, then close clients; never hangs longer than `timeout` per step."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=timeout)
            for task in stuck:
                log.error("%s did not stop within %.0fs: %s", task.get_name(), timeout, task.get_stack())
        closers = [c.stop() for c in self.consumers] + [self.publisher.stop(), self.db.dispose()]
        if self.lead_keys is not None:
            closers.append(self.lead_keys.close())
        for closer in closers:
            try:
                async with asyncio.timeout(timeout):
                    await closer
            except Exception as error:
                log.error("closing %s failed: %r", self.name, error)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        log.info("%s started", self.name)
        try:
            yield
        finally:
            await self.stop()
            log.info("%s stopped", self.name)
