"""What the pipeline did with a stream's leads, seen as a user sees it: metrics' funnel, the
`lead.hot` webhooks the subscriber received (signatures checked), the emails the SMTP server
received, scoring's answer for each lead and nurture's touches timeline of each lead."""

import asyncio
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from standardwebhooks.webhooks import Webhook

from tests.faults.sinks import Sinks
from tests.faults.stack import ADMIN, FaultStack
from tests.faults.stream import Lead
from tests.receiver import Received

STUCK_SECONDS = 15.0  # a send ends within nurture's 10 s timeout: "sending" longer, its sender died
QUIET_SECONDS = 5.0  # no new email for this long: the ones still missing are not coming soon
FINAL = ("sent", "failed", "cancelled")


def get_many(urls: list[str], concurrency: int = 8) -> dict[str, Any]:
    """GET each URL with the admin token, a few at once; its JSON when 200, else None.
    (aiohttp: an httpx client cost twice the time here.)"""

    async def run() -> dict[str, Any]:
        limit = asyncio.Semaphore(concurrency)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(headers=ADMIN, timeout=timeout) as session:

            async def one(url: str) -> tuple[str, Any]:
                async with limit:
                    try:
                        async with session.get(url) as answer:
                            return url, await answer.json() if answer.status == 200 else None
                    except (aiohttp.ClientError, TimeoutError):
                        return url, None

            return dict(await asyncio.gather(*(one(url) for url in urls)))

    return asyncio.run(run())


def verified(request: Received, secret: str) -> dict[str, Any]:
    """The request's payload, after checking its Standard Webhooks signature (not its age:
    a request may be looked at again minutes later)."""
    headers = request.headers
    sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(headers["webhook-id"], sent_at, request.body.decode())
    assert expected in headers["webhook-signature"].split(" "), "a webhook with a wrong signature"
    return dict(json.loads(request.body))


class HotWebhooks:
    """The `lead.hot` requests the subscriber received: each verified once, when first seen."""

    def __init__(self, sinks: Sinks, path: str, secret: str) -> None:
        self.sinks, self.path, self.secret = sinks, path, secret
        self.seen = 0
        self.ids: dict[str, list[str]] = defaultdict(list)  # lead id -> webhook-id of each request
        self.arrived: dict[str, float] = {}  # lead id -> time.monotonic() of its first request

    def by_lead(self) -> dict[str, list[str]]:
        """The webhook-id of every `lead.hot` request received, by lead (retries included)."""
        received = self.sinks.webhooks(self.path)
        for request, at in received[self.seen :]:
            payload = verified(request, self.secret)
            if payload["type"] == "lead.hot":
                lead = payload["data"]["lead_id"]
                self.ids[lead].append(request.headers["webhook-id"])
                self.arrived.setdefault(lead, at)
        self.seen = len(received)
        return {lead: list(ids) for lead, ids in self.ids.items()}


def emails_by_recipient(sinks: Sinks) -> dict[str, list[str]]:
    """The touch id (its Message-ID) of every email received, by recipient, repeats included."""
    found: dict[str, list[str]] = defaultdict(list)
    for email in sinks.emails():
        for to in email["to"]:
            found[to].append(email["touch_id"])
    return found


@dataclass
class Observation:
    """Polled (`settled`) until the pipeline has done all it will do with the leads."""

    stack: FaultStack
    leads: list[Lead]  # the accepted ones
    source_id: str
    period: dict[str, str]  # the funnel's from/to, covering the test
    hooks: HotWebhooks
    sinks: Sinks
    funnel: dict[str, Any] = field(default_factory=dict)
    webhooks: dict[str, list[str]] = field(default_factory=dict)
    emails: dict[str, list[str]] = field(default_factory=dict)
    temperatures: dict[str, str | None] = field(default_factory=dict)  # lead id -> scoring's answer
    touches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # lead id -> its timeline
    sending_since: dict[str, float] = field(default_factory=dict)  # touch id -> first seen "sending"
    reached: dict[str, float] = field(default_factory=dict)  # seconds from the start until each was seen
    last_email: tuple[int, float] = (0, 0.0)  # emails received, and since when

    def __post_init__(self) -> None:
        self.began = time.monotonic()
        self.by_id = {str(lead.lead_id): lead for lead in self.leads}
        self.hot = [i for i, lead in self.by_id.items() if lead.temperature == "hot"]
        # Warm and cold leads get an email at once: their playbooks start with one.
        self.followed = [lead for lead in self.leads if lead.temperature != "hot"]
        self.expected = dict(Counter(lead.temperature for lead in self.leads))

    def settled(self) -> bool:
        """Cheap looks first (the funnel, what the sinks received); each lead over HTTP only
        once those say the pipeline is through, and then only the leads still pending."""
        self.funnel = self.stack.get("metrics", "/v1/funnel", source=self.source_id, **self.period)
        self.webhooks = self.hooks.by_lead()
        self.emails = emails_by_recipient(self.sinks)
        self.note("funnel", self.funnel["total"] >= len(self.leads))
        self.note("funnel_temperatures", self.funnel["by_temperature"] == self.expected)
        self.note("webhooks", all(self.webhooks.get(i) for i in self.hot))
        self.note("emails", self.emails_done())
        if not {"funnel_temperatures", "webhooks", "emails"} <= set(self.reached):
            return False
        self.look_at_classifications()
        self.look_at_touches()
        self.note(
            "classified", all(self.temperatures[i] == lead.temperature for i, lead in self.by_id.items())
        )
        self.note("touches", all(self.touch_settled(lead) for lead in self.followed))
        return {"classified", "touches"} <= set(self.reached) and self.funnel["total"] == len(self.leads)

    def note(self, what: str, done: bool) -> None:
        if done:
            self.reached.setdefault(what, round(time.monotonic() - self.began, 1))

    def emails_done(self) -> bool:
        """Every followed lead has an email, or none came for a while."""
        count = sum(len(self.emails.get(lead.email, [])) for lead in self.followed)
        if count != self.last_email[0]:
            self.last_email = (count, time.monotonic())
        everyone = all(self.emails.get(lead.email) for lead in self.followed)
        return everyone or time.monotonic() - self.last_email[1] > QUIET_SECONDS

    def look_at_classifications(self) -> None:
        pending = [i for i, lead in self.by_id.items() if self.temperatures.get(i) != lead.temperature]
        urls = {i: self.stack.url("scoring", f"/v1/leads/{i}") for i in pending}
        answers = get_many(list(urls.values()))
        for i, url in urls.items():
            self.temperatures[i] = answers[url]["temperature"] if answers[url] else None

    def look_at_touches(self) -> None:
        pending = [str(lead.lead_id) for lead in self.followed if not self.touch_settled(lead)]
        urls = {i: self.stack.url("nurture", f"/v1/leads/{i}/touches") for i in pending}
        answers = get_many(list(urls.values()))
        now = time.monotonic()
        for i, url in urls.items():
            self.touches[i] = answers[url] or []
            for touch in self.touches[i]:
                if touch["status"] == "sending":
                    self.sending_since.setdefault(touch["id"], now)

    def in_flight_settled(self) -> bool:
        """The first email touches nurture held as "sending" when it was killed are final: once
        their claim lapses they fail as in doubt (they may have left), never go again."""
        pending = [
            str(lead.lead_id)
            for lead in self.followed
            if (t := self.first_email(lead)) and t["status"] in ("sending", "scheduled")
        ]
        urls = {i: self.stack.url("nurture", f"/v1/leads/{i}/touches") for i in pending}
        answers = get_many(list(urls.values()))
        for i, url in urls.items():
            self.touches[i] = answers[url] or self.touches.get(i, [])
        self.emails = emails_by_recipient(self.sinks)
        return all(t["status"] in FINAL for i in pending if (t := self.first_email(self.by_id[i])))

    def first_email(self, lead: Lead) -> dict[str, Any] | None:
        steps = [t for t in self.touches.get(str(lead.lead_id), []) if t["step"] == 0]
        return steps[0] if steps else None

    def orphaned(self, touch: dict[str, Any]) -> bool:
        """Still "sending" long after any send would have ended: its sender died."""
        since = self.sending_since.get(touch["id"])
        return touch["status"] == "sending" and since is not None and time.monotonic() - since > STUCK_SECONDS

    def touch_settled(self, lead: Lead) -> bool:
        """Its first email touch is done (sent and received, failed, cancelled) or orphaned."""
        touch = self.first_email(lead)
        if touch is None:
            return False
        if touch["status"] == "sent":
            return touch["id"] in self.emails.get(lead.email, [])
        return touch["status"] in FINAL or self.orphaned(touch)

    def figures(self) -> dict[str, Any]:
        """The counts reported for a scenario (and asserted by it)."""
        return {
            "accepted": len(self.leads),
            "funnel_total": self.funnel.get("total"),
            **self.classification_figures(),
            **self.webhook_figures(),
            **self.email_figures(),
            "settled_after": self.reached,
        }

    def classification_figures(self) -> dict[str, int]:
        answers = [(self.temperatures.get(i), lead.temperature) for i, lead in self.by_id.items()]
        return {
            "classified": sum(1 for found, _ in answers if found in ("hot", "warm", "cold")),
            "classified_as_posted": sum(1 for found, posted in answers if found == posted),
        }

    def webhook_figures(self) -> dict[str, int]:
        ids = {i: self.webhooks.get(i, []) for i in self.hot}
        return {
            "hot": len(self.hot),
            "delivered": sum(1 for requests in ids.values() if requests),
            "distinct_webhook_ids": sum(len(set(requests)) for requests in ids.values()),
            "webhook_requests": sum(len(requests) for requests in ids.values()),
            "hot_leads_with_two_webhook_ids": sum(1 for requests in ids.values() if len(set(requests)) > 1),
            "lead_hot_for_other_leads": sum(1 for i in self.by_id if i not in ids and self.webhooks.get(i)),
        }

    def email_figures(self) -> dict[str, Any]:
        emails = {lead.email: self.emails.get(lead.email, []) for lead in self.followed}
        received = Counter(t for touches in emails.values() for t in touches)
        firsts = [t for lead in self.followed if (t := self.first_email(lead))]
        unsettled = Counter(
            f"{t['status']} after {t['attempts']} tries: {t['detail']}"
            for lead in self.followed
            if not self.touch_settled(lead) and (t := self.first_email(lead))
        )
        return {
            "emails_expected": len(emails),
            "emails_received": sum(received.values()),
            "emails_sent_twice": sum(1 for count in received.values() if count > 1),
            "leads_emailed_twice": sum(1 for touches in emails.values() if len(set(touches)) > 1),
            "touches_late": sum(1 for t in firsts if self.orphaned(t) and not received[t["id"]]),
            "touches_to_be_sent_again": sum(
                1 for t in firsts if received[t["id"]] and t["status"] in ("sending", "scheduled")
            ),
            "touches_in_doubt": sum(1 for t in firsts if (t["detail"] or "").startswith("in doubt")),
            "unsettled_touches": dict(unsettled.most_common(5)),
        }


def failed_attempts(stack: FaultStack, endpoint_id: str) -> dict[str, int]:
    """The subscriber's failed delivery attempts (of its newest 500 deliveries), by answer."""
    deliveries = stack.get("nurture", f"/v1/webhooks/{endpoint_id}/deliveries", limit=500)
    failed = Counter(
        f"{a['status_code']} {a['error']}"[:120]
        for d in deliveries
        for a in d["attempt_log"]
        if not (a["status_code"] and 200 <= a["status_code"] < 300)
    )
    return dict(failed)


def duplicates(figures: dict[str, Any]) -> int:
    """Everything received twice: two webhook-ids for one hot lead, a lead.hot about a lead that
    is not hot, a second email for the same step of a lead (a touch planned twice), an email
    received twice (`emails_sent_twice`: one touch sent again; not yet received but bound to be:
    `touches_to_be_sent_again`)."""
    keys = (
        "hot_leads_with_two_webhook_ids",
        "lead_hot_for_other_leads",
        "leads_emailed_twice",
        "emails_sent_twice",
    )
    return sum(int(figures[k]) for k in keys)
