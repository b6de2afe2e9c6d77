"""The health report's outbox and inbox figures per service, from what each answered (its
`GET /v1/outbox`, `GET /v1/inbox`, or why it did not) and metrics' own, with a problem line for
a service that did not answer and for one holding what needs an admin."""

from dataclasses import dataclass
from typing import Any

Answer = dict[str, Any] | str
"""A service's figures, or why there are none."""

Counts = dict[str, int | None]
"""A figure per service; None where it could not be read."""


@dataclass(frozen=True)
class OwnFigures:
    """Metrics' own, read from its schema; None where its database did not answer."""

    outbox_backlog: int | None = None
    outbox_dead_letters: int | None = None
    inbox_dead_letters: int | None = None


def outbox_figures(answers: dict[str, Answer], own: OwnFigures, problems: list[str]) -> tuple[Counts, Counts]:
    """Each service's unpublished outbox rows, and the rows its relay set aside."""
    backlog: Counts = {}
    dead: Counts = {}
    for service, answer in answers.items():
        if isinstance(answer, str):
            backlog[service] = dead[service] = None
            problems.append(f"{service}: {answer}")
        else:
            backlog[service], dead[service] = answer["backlog"], answer["dead_letters"]
    backlog["metrics"], dead["metrics"] = own.outbox_backlog, own.outbox_dead_letters
    for service, count in dead.items():
        if count:
            problems.append(f"{service}: {count} events the broker refused (GET /v1/outbox/dead-letters)")
    return backlog, dead


def inbox_figures(
    answers: dict[str, Answer], outboxes: dict[str, Answer], own: OwnFigures, problems: list[str]
) -> Counts:
    """Each consuming service's inbox dead letters: what its consumer could not apply, missing
    from its read model until replayed. A service that answered neither question has one line
    already (its outbox's)."""
    dead: Counts = {}
    for service, answer in answers.items():
        if isinstance(answer, str):
            dead[service] = None
            if not isinstance(outboxes.get(service), str):
                problems.append(f"{service}: {answer}")
        else:
            dead[service] = answer["dead_letters"]
    dead["metrics"] = own.inbox_dead_letters
    for service, count in dead.items():
        if count:
            problems.append(
                f"{service}: {count} events its consumer could not apply, missing from its data"
                " until replayed (GET /v1/inbox/dead-letters)"
            )
    return dead
