"""JSON batching: ``POST /v1.0/$batch`` with up to 20 requests, each served like a real one."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.graph_emulator.errors import GraphError, bad_request
from tests.graph_emulator.routes import Reply

__all__ = ["MAX_REQUESTS", "Inner", "run_batch"]

MAX_REQUESTS = 20
_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


@dataclass(frozen=True, slots=True)
class Inner:
    """One request of a batch: path (after /v1.0), query pairs, headers, JSON body."""

    id: str
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any


def parse_batch(body: object) -> list[tuple[Inner, list[str]]]:
    """The batch's requests with their ``dependsOn``; 400 for a malformed batch."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise bad_request("Invalid batch payload format.", "BadRequest")
    requests = body["requests"]
    if not requests:
        raise bad_request("Invalid batch payload format: no requests.", "BadRequest")
    if len(requests) > MAX_REQUESTS:
        raise bad_request(f"Number of requests exceeds the limit of {MAX_REQUESTS}.", "BadRequest")
    parsed: list[tuple[Inner, list[str]]] = []
    seen: set[str] = set()
    for request in requests:
        inner, depends = _parse_one(request)
        if inner.id in seen:
            raise bad_request(
                f"Request id '{inner.id}' is not unique within the batch.", "BadRequest"
            )
        if any(d not in seen for d in depends):
            raise bad_request(
                f"Request id '{inner.id}' depends on a request that is not before it.", "BadRequest"
            )
        seen.add(inner.id)
        parsed.append((inner, depends))
    return parsed


def _parse_one(request: object) -> tuple[Inner, list[str]]:
    if not isinstance(request, dict):
        raise bad_request("Each batch request must be an object.", "BadRequest")
    ident, method, url = request.get("id"), request.get("method"), request.get("url")
    if not isinstance(ident, str) or not ident:
        raise bad_request("Each batch request needs a string 'id'.", "BadRequest")
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise bad_request(f"Request id '{ident}' has an invalid method.", "BadRequest")
    if not isinstance(url, str) or url.lower().startswith(("http:", "https:")):
        raise bad_request(f"Request id '{ident}' needs a relative 'url'.", "BadRequest")
    headers = request.get("headers") or {}
    if not isinstance(headers, dict):
        raise bad_request(f"Request id '{ident}' has invalid headers.", "BadRequest")
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    body = request.get("body")
    if body is not None and "content-type" not in lower:
        raise bad_request(
            f"Write request id : {ident} does not contain Content-Type header or body.",
            "BadRequest",
        )
    depends = request.get("dependsOn") or []
    if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
        raise bad_request(f"Request id '{ident}' has an invalid 'dependsOn'.", "BadRequest")
    split = urllib.parse.urlsplit("/" + url.lstrip("/"))
    query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
    return Inner(ident, method.upper(), split.path, query, lower, body), depends


def run_batch(body: object, serve: Callable[[Inner], Reply]) -> Reply:
    """Serve a batch in order; a request whose dependency failed gets 424."""
    responses: list[dict[str, Any]] = []
    statuses: dict[str, int] = {}
    for inner, depends in parse_batch(body):
        if any(statuses[d] >= 400 for d in depends):
            reply = Reply(
                424,
                GraphError(424, "BadRequest", "Failed dependency.").body(),
            )
        else:
            reply = serve(inner)
        statuses[inner.id] = reply.status
        responses.append(_response(inner.id, reply))
    return Reply(200, {"responses": responses})


def _response(ident: str, reply: Reply) -> dict[str, Any]:
    headers = dict(reply.headers)
    answer: dict[str, Any] = {"id": ident, "status": reply.status, "headers": headers}
    if reply.body is not None:
        headers["Content-Type"] = (
            "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"
        )
        answer["body"] = reply.body
    return answer
