"""Query parameters a route does not take, or takes once and is sent several times: a JSON API
route refuses them with a 422 naming each (and the ones it takes), since answering as if they
were not sent, or with one of the values, lets a caller believe a filter applied; pages people
open and receivers others call take any, as `AnyQuery` marks."""

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi._compat import field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.params import Query
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.datastructures import QueryParams

AnyName = None
"""What a route takes when it takes any query parameter."""

# How a route says a parameter holds several values in one (`stages=lead,mql`): its description,
# which the OpenAPI document shows, starts so ("Comma-separated, in order; …").
_COMMA_SEPARATED = re.compile(r"\bcomma[- ]separated\b", re.IGNORECASE)


async def takes_any_query_parameters() -> None:
    """A route (or a router) that ignores query parameters it does not read: a page opened from
    an email or a browser, whose links mail clients and ad platforms append `utm_*`, `fbclid`
    or `mc_eid` to, or a receiver whose callers we do not control (Telegram, a chatbot)."""


AnyQuery = Depends(takes_any_query_parameters)


@dataclass(frozen=True)
class QueryFacts:
    """The query parameters a route reads (by the names sent), those it reads all the values of
    (a `list[str]` Query: it may be repeated) and those whose one value is a comma-separated list."""

    taken: frozenset[str]
    repeatable: frozenset[str]
    comma_separated: frozenset[str]


def query_facts(dependant: Dependant) -> QueryFacts | None:
    """What a route takes, through all its dependencies and query models; None when it takes
    any (`AnyQuery`, or a model of extra=allow)."""
    fields: list[tuple[str, Any]] = []  # (name sent, its FieldInfo)
    pending = [dependant]
    while pending:
        current = pending.pop()
        if current.call is takes_any_query_parameters:
            return AnyName
        for field in current.query_params:
            model = _query_model(field.field_info)
            if model is None:
                fields.append((field.alias, field.field_info))
            elif model.model_config.get("extra") == "allow":
                return AnyName
            else:
                fields += [(_sent_name(name, info), info) for name, info in model.model_fields.items()]
        pending.extend(current.dependencies)
    return QueryFacts(
        taken=frozenset(name for name, _ in fields),
        # FastAPI's own test of whether it reads one value of a parameter or all of them
        repeatable=frozenset(name for name, info in fields if field_annotation_is_sequence(info.annotation)),
        comma_separated=frozenset(
            name for name, info in fields if _COMMA_SEPARATED.search(info.description or "")
        ),
    )


def query_names(dependant: Dependant) -> frozenset[str] | None:
    """The query parameters a route reads (by the names sent: aliases); None when it takes any."""
    facts = query_facts(dependant)
    return AnyName if facts is None else facts.taken


def _query_model(info: Any) -> type[BaseModel] | None:
    """The pydantic model of a query model parameter (`Annotated[Filters, Query()]`), if it is one."""
    if not isinstance(info, Query):
        return None
    candidates = getattr(info.annotation, "__args__", None) or (info.annotation,)  # Filters | None
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _sent_name(name: str, info: Any) -> str:
    alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
    return str(alias or name)


class RefuseUnknownQueryParameters:
    """An app's check of each request's query parameters against its route's (worked out once
    per route; a request without a query string costs nothing)."""

    def __init__(self) -> None:
        self._facts: dict[int, QueryFacts | None] = {}  # by id(route): the app keeps its routes

    async def __call__(self, request: Request) -> None:
        route = request.scope.get("route")
        if not request.scope.get("query_string") or not isinstance(route, APIRoute):
            return
        if id(route) not in self._facts:
            self._facts[id(route)] = query_facts(route.dependant)
        facts = self._facts[id(route)]
        if facts is AnyName:
            return
        if errors := _refusals(facts, request.query_params):
            raise RequestValidationError(errors)


def _refusals(facts: QueryFacts, sent: QueryParams) -> list[dict[str, Any]]:
    """A validation error for each parameter sent that the route does not take, and for each it
    takes one value of that was sent more than once (FastAPI would read the last and drop the rest)."""
    counts = Counter(name for name, _ in sent.multi_items())
    errors = []
    for name, count in sorted(counts.items()):
        if name not in facts.taken:
            errors.append(_unknown(name, facts.taken))
        elif count > 1 and name not in facts.repeatable:
            errors.append(_repeated(name, sent.getlist(name), name in facts.comma_separated))
    return errors


def _unknown(name: str, taken: frozenset[str]) -> dict[str, Any]:
    takes = f"it takes {', '.join(sorted(taken))}" if taken else "it takes none"
    return {
        "loc": ("query", name),
        "msg": f"is not a query parameter of this route ({takes})",
        "type": "extra_forbidden",
    }


def _repeated(name: str, values: list[str], comma_separated: bool) -> dict[str, Any]:
    message = f"given {len(values)} times; it takes one value"
    if comma_separated:
        together = ",".join(v for v in values if v)
        message += f"; write several as one comma-separated value: {name}={together}"
    return {"loc": ("query", name), "msg": message, "type": "repeated"}
