"""The errors each operation of a service's OpenAPI document declares: the one `Problem` shape
that `shared.http.problem` sends, as application/problem+json, for the statuses its route's
dependencies may answer (each marked with `answers`), those the route names in `responses`, and
those any route may. FastAPI's own guess (HTTPValidationError as application/json) is not sent."""

from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

PROBLEM_JSON = "application/problem+json"
# Every route reads or writes its service's database, whose outage is a 503 (shared.problem_handlers).
ANY_ROUTE = frozenset({503})
# A route that takes a body refuses one over the size limit (shared.http.BodySizeLimit) and one
# of another media type (a JSON route's through shared.problem_handlers, the others' themselves).
WITH_BODY = frozenset({413, 415})
SAID = {
    401: "The token or key is missing or wrong (`title` says which)",
    403: "The token is known but may not do this",
    413: "The body is over this route's size limit",
    415: "The body is not of a media type this route takes",
    422: "A parameter or the body is refused: `errors` names each field and why",
    429: "Too many requests, or too many wrong tokens, from this client or key: retry after `Retry-After`",
    503: "The database is not answering: retry shortly",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
REPLACED = ("HTTPValidationError", "ValidationError")

Dependency = TypeVar("Dependency", bound=Callable[..., Any])


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="The field as it was sent (`utm.source`), or `body`")
    reason: str
    type: str = Field(description="What a client acts on (`missing`, `email_invalid`, `contact_missing`)")


class Problem(BaseModel):
    """An error, as RFC 9457 has it."""

    model_config = ConfigDict(extra="forbid")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = Field(None, description="Each field refused and why (422)")


def answers(*statuses: int) -> Callable[[Dependency], Dependency]:
    """Mark a dependency with the error statuses it may answer: every route that depends on it
    declares them."""

    def mark(dependency: Dependency) -> Dependency:
        setattr(dependency, "__answers__", frozenset(statuses))  # noqa: B010 (a function's attribute)
        return dependency

    return mark


def document_errors(app: FastAPI) -> None:
    """Make `app.openapi()` declare each operation's errors as `Problem`s (see the module)."""
    generate = app.openapi  # FastAPI's, which makes the document anew once a route is added
    declared: list[dict[str, Any]] = []  # the document last declared in

    def openapi() -> dict[str, Any]:
        document = generate()
        if not any(seen is document for seen in declared):
            routes = [r for r in iter_route_contexts(app.routes) if isinstance(r.original_route, APIRoute)]
            declare_errors(document, routes)
            declared[:] = [document]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def declare_errors(document: dict[str, Any], routes: list[RouteContext]) -> None:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(schema.pop("$defs", {}), Problem=schema)
    for route in routes:
        for method in route.methods or ():
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _declare(operation, _answered_by(route.dependant))
    for name in REPLACED:
        schemas.pop(name, None)


def _declare(operation: dict[str, Any], by_dependencies: frozenset[int]) -> None:
    responses = operation.setdefault("responses", {})
    named = {int(status) for status in responses if status.isdigit() and int(status) >= 400}
    body = WITH_BODY if "requestBody" in operation else frozenset()
    for status in sorted(named | by_dependencies | body | ANY_ROUTE):
        response = responses.setdefault(str(status), {})
        if response.get("description") in (None, "Validation Error", "Additional Response"):
            response["description"] = SAID.get(status, HTTPStatus(status).phrase)
        content = response.setdefault("content", {})
        content.pop("application/json", None)
        content[PROBLEM_JSON] = {"schema": {"$ref": "#/components/schemas/Problem"}}
        if status in (429, 503):
            response.setdefault("headers", {}).update(RETRY_AFTER)
    operation["responses"] = dict(sorted(responses.items()))
    if operation.get("security") and 401 not in by_dependencies:
        # A bearer the route reads but does not require (nurture's acknowledge takes the webhook's
        # token instead): `{}` says the request may come without it.
        operation["security"] = [{}, *operation["security"]]


def _answered_by(dependant: Dependant) -> frozenset[int]:
    return frozenset(status for call in _calls(dependant) for status in getattr(call, "__answers__", ()))


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)
