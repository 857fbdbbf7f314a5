"""What every Graph API stand-in shares: the server, the token, the version, Meta's errors.

Meta's error shape (https://developers.facebook.com/docs/graph-api/guides/error-handling)::

    {"error": {"message": "(#100) …", "type": "OAuthException", "code": 100,
               "error_subcode": 2018001, "fbtrace_id": "…"}}

with HTTP 400 for most errors (401 for a bad token), told apart by ``code`` and
``error_subcode``. The token may come as ``access_token`` in the query or the body,
or as ``Authorization: Bearer``; a wrong or missing one gets 190. The path must start
with a version (``/v25.0/``); an unknown one gets 2635 as Meta answers.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

JSONDict = dict[str, Any]
PAGE_TOKEN = "EAAGstandin0000pagetoken0000000000000000"
APP_SECRET = "0123456789abcdef0123456789abcdef"
PAGE_ID = "100200300400500"
VERSIONS = ("v22.0", "v23.0", "v24.0", "v25.0", "v26.0")

Handler = Callable[[web.Request, JSONDict], Awaitable[web.Response]]


class GraphFault(Exception):
    """Raised inside a route: answered as Meta's error body."""

    def __init__(
        self,
        code: int,
        message: str,
        subcode: int = 0,
        status: int = 400,
        kind: str = "OAuthException",
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.subcode, self.status, self.kind = (
            code,
            message,
            subcode,
            status,
            kind,
        )


_trace = itertools.count(1)


def error_response(fault: GraphFault, headers: dict[str, str] | None = None) -> web.Response:
    error: JSONDict = {
        "message": fault.message,
        "type": fault.kind,
        "code": fault.code,
        "fbtrace_id": f"Standin{next(_trace):08d}",
    }
    if fault.subcode:
        error["error_subcode"] = fault.subcode
    return web.json_response({"error": error}, status=fault.status, headers=headers)


@dataclass
class Call:
    """One request as the stand-in saw it (the token left out)."""

    method: str
    path: str  # without the version: "/me/messages"
    version: str
    query: dict[str, str]
    body: Any


@dataclass
class GraphCore:
    """Serves routes registered by the surfaces (messages, profile…) under ``/{version}``.

    ``fail_next(path, fault)`` makes the next call to ``path`` fail once, as Meta would;
    ``token`` may be changed (``expire_token``) to see a refused token (190).
    """

    token: str = PAGE_TOKEN
    calls: list[Call] = field(default_factory=list)
    _routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    _faults: dict[str, list[tuple[GraphFault, dict[str, str]]]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    url: str = ""

    def route(self, method: str, path: str, handler: Handler) -> None:
        """``path`` without the version, may hold ``{name}`` parts: "/{page}/subscribed_apps"."""
        self._routes[(method, path)] = handler

    def fail_next(
        self, path: str, fault: GraphFault, headers: dict[str, str] | None = None
    ) -> None:
        self._faults.setdefault(path, []).append((fault, headers or {}))

    def expire_token(self) -> None:
        self.token = "expired-" + self.token

    async def start(self) -> Self:
        app = web.Application(client_max_size=30 * 1024 * 1024)
        app.router.add_route("*", "/{version}/{rest:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _dispatch(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        path = "/" + request.match_info["rest"]
        body: Any = None
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                return error_response(
                    GraphFault(100, "(#100) The parameter body is not valid JSON")
                )
        elif request.content_type.startswith("multipart/"):
            body = {"multipart": await request.post()}
        query = dict(request.query)
        try:
            if version not in VERSIONS:
                raise GraphFault(2635, f"Unknown Graph API version {version}", status=400)
            self._check_token(request, query, body)
            query.pop("access_token", None)
            self.calls.append(Call(request.method, path, version, query, body))
            queued = self._faults.get(path)
            if queued:
                fault, headers = queued.pop(0)
                return error_response(fault, headers)
            handler, params = self._find(request.method, path)
            return await handler(request, {"params": params, "query": query, "body": body})
        except GraphFault as fault:
            return error_response(fault)

    def _check_token(self, request: web.Request, query: dict[str, str], body: Any) -> None:
        given = query.get("access_token", "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer ") :]
        if not given and isinstance(body, dict):
            given = str(body.get("access_token", ""))
        if not given:
            raise GraphFault(
                2500, "An active access token must be used to query information.", status=400
            )
        if given != self.token:
            raise GraphFault(
                190,
                "Error validating access token: The session is invalid.",
                subcode=467,
                status=401,
            )

    def _find(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        for (m, pattern), handler in self._routes.items():
            if m != method:
                continue
            regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
            found = re.match(regex, path)
            if found:
                return handler, found.groupdict()
        raise GraphFault(
            100,
            f"Unsupported {method.lower()} request. Object does not exist or cannot be loaded",
            33,
        )
