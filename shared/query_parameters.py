"""Query parameters a route does not take: a JSON API route refuses them with a 422 naming each
(and the ones it takes), since answering as if they were not sent lets a caller believe a
filter applied; pages people open and receivers others call take any, as `AnyQuery` marks."""

from typing import Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.params import Query
from fastapi.routing import APIRoute
from pydantic import BaseModel

AnyName = None
"""What a route takes when it takes any query parameter."""


async def takes_any_query_parameters() -> None:
    """A route (or a router) that ignores query parameters it does not read: a page opened from
    an email or a browser, whose links mail clients and ad platforms append `utm_*`, `fbclid`
    or `mc_eid` to, or a receiver whose callers we do not control (Telegram, a chatbot)."""


AnyQuery = Depends(takes_any_query_parameters)


def query_names(dependant: Dependant) -> frozenset[str] | None:
    """The query parameters a route reads, through all its dependencies and query models (by
    the names sent: aliases); None when it takes any (`AnyQuery`, or a model of extra=allow)."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        if current.call is takes_any_query_parameters:
            return AnyName
        for field in current.query_params:
            model = _query_model(field.field_info)
            if model is None:
                names.add(field.alias)
            elif model.model_config.get("extra") == "allow":
                return AnyName
            else:
                names |= {_sent_name(name, info) for name, info in model.model_fields.items()}
        pending.extend(current.dependencies)
    return frozenset(names)


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
        self._names: dict[int, frozenset[str] | None] = {}  # by id(route): the app keeps its routes

    async def __call__(self, request: Request) -> None:
        route = request.scope.get("route")
        if not request.scope.get("query_string") or not isinstance(route, APIRoute):
            return
        if id(route) not in self._names:
            self._names[id(route)] = query_names(route.dependant)
        taken = self._names[id(route)]
        if taken is AnyName:
            return
        unknown = sorted({name for name in request.query_params if name not in taken})
        if unknown:
            raise RequestValidationError([_unknown(name, taken) for name in unknown])


def _unknown(name: str, taken: frozenset[str]) -> dict[str, Any]:
    takes = f"it takes {', '.join(sorted(taken))}" if taken else "it takes none"
    return {
        "loc": ("query", name),
        "msg": f"is not a query parameter of this route ({takes})",
        "type": "extra_forbidden",
    }
