"""When a commercial proposal is answered and when it goes stale: pure, no I/O (DOMAIN.md
"Follow-up": proposals with no answer in two weeks are stale, 002:276; watch the response
times and improve the material on them).

A proposal waits from its `proposal_sent` outcome until the person answers it:
- a later sales outcome for the lead: a meeting booked, won, lost, rejected by sales, churned
  (`sales_accepted` is sales taking the lead from marketing, not the person's answer);
- a later activity of the person's own that says something back: a form sent, a chat message,
  a meeting held, a callback, demo or price request, an order, a purchase. Looking (page and
  content views, downloads, webinars, opened or clicked emails, a form begun, a social like,
  an app download or trial, a store or event visit), what the rep wrote (a note), a logged
  call (it may be the rep's own that nobody picked up: whether anyone did is in its
  properties, sealed with the person's data), referring someone else and an import are not
  an answer: the rep still has to ask;
- another `proposal_sent` does not answer it but takes its place: the clock starts again.
Only something dated after the proposal was sent answers it (a CRM may record late).
"""

from datetime import datetime, timedelta

from shared.events import ActivityRecorded, OutcomeRecorded

PROPOSAL_SENT = "proposal_sent"
ANSWERING_OUTCOMES = frozenset({"meeting_booked", "won", "lost", "sales_rejected", "churned"})
ANSWERING_ACTIVITIES = frozenset(
    {
        "form_submitted",
        "chat_message",
        "meeting_held",
        "callback_request",
        "demo_request",
        "price_request",
        "one_click_order",
        "purchase",
    }
)


def stale_at(sent_at: datetime, stale_days: float) -> datetime:
    return sent_at + timedelta(days=stale_days)


def answer_of_outcome(outcome: OutcomeRecorded) -> str | None:
    """What the outcome answers a waiting proposal with (None: it answers nothing)."""
    return f"outcome:{outcome.outcome}" if outcome.outcome in ANSWERING_OUTCOMES else None


def answer_of_activity(activity: ActivityRecorded) -> str | None:
    """What the activity answers a waiting proposal with (None: it answers nothing)."""
    kind = activity.activity_type
    return f"activity:{kind}" if kind in ANSWERING_ACTIVITIES else None


def answers(sent_at: datetime, answered_at: datetime) -> bool:
    """Whether something dated `answered_at` comes after the proposal (and so may answer it)."""
    return answered_at > sent_at
