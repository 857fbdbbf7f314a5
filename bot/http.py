"""The aiohttp application and server: health check, media, and the limits every connection keeps.

aiohttp closes an idle connection (``keepalive_timeout``) but has no deadline of
its own for reading a request: a client that sends half its headers, or a body
slower than it promised (or shorter than its ``Content-Length``), holds a
connection and its task for as long as it likes. Here:

- a request's head must be complete within ``header_seconds`` of its first
  byte (``_Connection``, at the protocol level, as hyper and Go do it); the
  connection is closed without an answer;
- a body must be complete within ``body_seconds`` of the head
  (``read_body_in_time``); the client gets 408 and the connection is closed;
- an idle connection is closed after ``keepalive_seconds`` (aiohttp's own
  timer), a new one that sends nothing too.

A WebSocket is none of these once upgraded: the head timer is off for an
upgraded connection and aiohttp stops its keep-alive timer on upgrade, so the
web chat lives as long as its heartbeat answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import StreamReader
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler

from bot.core.config import HttpTimeouts
from storage import media
from storage.db import ping

log = logging.getLogger(__name__)

MEDIA_KEY = re.compile(r"[0-9a-f]{64}")
# The largest body any route takes; a route may keep a smaller cap of its own.
MAX_BODY_BYTES = 1024 * 1024
# Sent instead of aiohttp's "Python/3.11 aiohttp/3.x", which helps only an attacker.
SERVER_NAME = "iesaiste"
TOO_SLOW = "408: the request body did not arrive in time"
BROKEN = "400: the request body was cut short or is malformed"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HealthCheck = Callable[[], str | None]
"""A part's own health: None when well, else what is wrong, for the operator (no secret)."""
HEALTH_CHECKS = web.AppKey("health_checks", dict[str, HealthCheck])


def add_health_check(app: web.Application, name: str, check: HealthCheck) -> None:
    """``/healthz`` answers 503 while ``check`` names a problem (a channel whose token the
    platform refused), with the part's name and the problem in the body."""
    app[HEALTH_CHECKS][name] = check


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers and every part is well; 503 tells a load balancer to
    look elsewhere, and an operator what is wrong."""
    if not await ping():
        return web.json_response({"status": "database unavailable"}, status=503)
    problems = {
        name: problem
        for name, check in request.app[HEALTH_CHECKS].items()
        if (problem := check()) is not None
    }
    if problems:
        status = "; ".join(f"{name} failing: {problem}" for name, problem in problems.items())
        return web.json_response({"status": status, "failing": problems}, status=503)
    return web.json_response({"status": "ok"})


async def media_file(request: web.Request) -> web.Response:
    """An image we keep; its key is its content's hash, so it never changes."""
    key = request.match_info["key"]
    found = await media.image(key) if MEDIA_KEY.fullmatch(key) else None
    if found is None:
        raise web.HTTPNotFound()
    data, content_type = found
    return web.Response(
        body=data,
        content_type=content_type,
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )


def read_body_in_time(seconds: float, caps: Mapping[str, int] | None = None) -> Middleware:
    """Middleware: every body is read whole, within ``seconds``, before its handler runs.

    No route streams a body (the webhook is JSON; the web chat talks over its
    WebSocket, and a photo upload is one body of at most 10 MB), so reading it
    here costs nothing and gives the handler a body that is complete. Over
    ``MAX_BODY_BYTES``, or the cap ``caps`` gives the request's path: 413 (by
    ``Content-Length`` before a byte is read, else once the cap is passed).
    """
    caps = dict(caps or {})

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        cap = caps.get(request.path)
        if cap is not None:
            request = request.clone(client_max_size=cap)
        if request.body_exists:
            declared = request.content_length
            if declared is not None and declared > request.client_max_size:
                raise web.HTTPRequestEntityTooLarge(request.client_max_size, declared)
            try:
                async with asyncio.timeout(seconds):
                    await request.read()
            except TimeoutError:
                log.debug("http: a body from %s took over %ss", request.remote, seconds)
                return await _answer_and_close(request, web.Response(status=408, text=TOO_SLOW))
            except (ConnectionError, web.RequestPayloadError) as error:
                # The client left half-way, or its chunked encoding is broken:
                # its mistake, not ours, so no traceback.
                log.debug("http: a body from %s was not read whole (%s)", request.remote, error)
                return await _answer_and_close(request, web.Response(status=400, text=BROKEN))
        return await handler(request)

    return middleware


async def _answer_and_close(request: web.Request, response: web.Response) -> web.Response:
    """Send ``response`` and close: aiohttp would otherwise linger to read the
    rest of a body we have given up on."""
    response.force_close()
    with contextlib.suppress(ConnectionError):  # the client may have gone already
        await response.prepare(request)
        await response.write_eof()
    request.protocol.force_close()  # the transport sends what it holds, then closes
    return response


async def _plain_server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[hdrs.SERVER] = SERVER_NAME


def build_app(
    timeouts: HttpTimeouts | None = None, body_caps: Mapping[str, int] | None = None
) -> web.Application:
    """``body_caps``: a larger cap than ``MAX_BODY_BYTES`` for the few paths that need
    one (the web chat's photo upload)."""
    timeouts = timeouts or HttpTimeouts()
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[read_body_in_time(timeouts.body_seconds, body_caps)],
    )
    app.on_response_prepare.append(_plain_server_header)
    app[HEALTH_CHECKS] = {}
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/media/{key}", media_file)
    return app


class _Connection(RequestHandler):
    """aiohttp's connection handler, with a deadline on each request's head.

    The timer starts with the first byte of a head and stops when the head is
    complete. Bytes that belong to a body, or to an upgraded connection (a
    WebSocket), start nothing. aiohttp's keep-alive timer, which also ends a
    connection stuck in a half-sent head but only after the whole keep-alive
    time, still guards a connection that sends nothing at all.
    """

    __slots__ = ("_body", "_head_timer", "_header_seconds")

    def __init__(self, manager: web.Server, *, header_seconds: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_seconds = header_seconds
        self._head_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # of the latest request, while it arrives

    def data_received(self, data: bytes) -> None:
        if data and self._head_timer is None and self._between_requests():
            self._head_timer = self._loop.call_later(self._header_seconds, self._head_too_slow)
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:  # one head or more are complete
            self._stop_head_timer()
            self._body = self._messages[-1][1] if self._messages else None

    def _between_requests(self) -> bool:
        """True when the next byte can only begin a head, not belong to a body or a WebSocket."""
        if self._upgraded or self._payload_parser is not None:
            return False
        return self._body is None or self._body.is_eof()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        log.debug("http: a request head took over %ss, closing", self._header_seconds)
        if self._waiter is not None and not self._waiter.done():
            self.force_close()  # nothing but the unfinished head: nobody to answer
        else:
            self.close()  # a request is being answered: send that answer, then close

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        # A request that is not valid HTTP is the client's mistake, answered
        # with 400: one line at debug level (the internet sends plenty), not a
        # traceback at error level. A failure of ours keeps its traceback.
        error = kwargs.get("exc_info")
        if isinstance(error, HttpProcessingError) and 400 <= error.code < 500:
            log.debug("http: refused a request that is not valid HTTP (%s)", error.code)
            return
        super().log_exception(*args, **kwargs)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # A request aiohttp could not parse never reaches the application, so
        # on_response_prepare does not see its answer: name the server here too.
        response = super().handle_error(request, status, exc, message)
        response.headers[hdrs.SERVER] = SERVER_NAME
        return response


class _Server(web.Server):
    """aiohttp's server, making ``_Connection``s."""

    def __init__(self, *args: Any, header_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_seconds = header_seconds

    def __call__(self) -> RequestHandler:
        return _Connection(
            self, loop=self._loop, header_seconds=self._header_seconds, **self._kwargs
        )


class HttpRunner(web.AppRunner):
    """``web.AppRunner`` with the timeouts of ``[http]`` on every connection."""

    __slots__ = ("_header_seconds",)

    def __init__(self, app: web.Application, timeouts: HttpTimeouts) -> None:
        super().__init__(
            app,
            handle_signals=False,
            access_log=None,
            keepalive_timeout=timeouts.keepalive_seconds,
        )
        self._header_seconds = timeouts.header_seconds

    async def _make_server(self) -> web.Server:
        # AppRunner starts and freezes the application and builds its server;
        # the same server is made again, with our connections.
        made = await super()._make_server()
        return _Server(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            header_seconds=self._header_seconds,
            **self._kwargs,
        )
