"""The HTTP server against clients that misbehave on purpose.

The whole bot runs as ``iesaiste run`` would (``start_bot``), in webhook mode
against the Bot API stand-in, with short timeouts from a configuration file's
``[http]`` section. The tests talk to it over raw sockets where a client
library would refuse to misbehave: half a head, a body slower than allowed or
shorter than its ``Content-Length``, an idle connection, bytes that are not
UTF-8 in a header, a body over the cap, updates of the wrong shape.

Timing bounds are generous (the machine is shared): each connection must be
closed after its own timeout (never before: that shows which timer closed it)
and within that timeout plus ``MARGIN``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import Runtime
from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from bot.core.config import ConfigError, load
from bot.core.i18n import translator
from storage.models import ChannelIdentity, DialogState, ProcessedEvent, Resident
from tests.bot.channels.telegram_helpers import WEBHOOK_SECRET, Chat, telegram_env, text_update
from tests.conftest import RuntimeFactory, free_port
from tests.phrases import HELP
from tests.standins.telegram_api import BotApiStandIn, JSONDict

HEADER, BODY, KEEPALIVE = 1.0, 2.0, 4.0  # seconds, all different: each close has one cause
MARGIN = 3.0
EARLY = 0.1  # a timer may fire this much before its time, by clock granularity
ANNA = 1001
SERVER = "iesaiste"

# The timeouts do not depend on the database: these tests run on SQLite only.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# --- fixtures and a raw client ------------------------------------------------
@pytest.fixture
def short_timeouts(tmp_path: Path) -> str:
    path = tmp_path / "config.toml"
    path.write_text(
        "[http]\n"
        f"header_timeout_seconds = {HEADER}\n"
        f"body_timeout_seconds = {BODY}\n"
        f"keepalive_timeout_seconds = {KEEPALIVE}\n",
        encoding="utf-8",
    )
    return str(path)


@pytest.fixture
async def api() -> AsyncIterator[BotApiStandIn]:
    async with BotApiStandIn() as stand_in:
        stand_in.add_user(ANNA, "Anna", language_code="en")
        yield stand_in


async def start_webhook_bot(
    api: BotApiStandIn, start_bot: RuntimeFactory, config_path: str | None
) -> Runtime:
    port = free_port()
    return await start_bot(
        config_path,
        **telegram_env(
            api,
            IESAISTE_TELEGRAM_MODE="webhook",
            IESAISTE_TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
            IESAISTE_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            IESAISTE_HTTP_PORT=str(port),
        ),
    )


@pytest.fixture
async def bot(api: BotApiStandIn, start_bot: RuntimeFactory) -> Runtime:
    """The bot in webhook mode, with no configuration file (after ``api``, so stopped before it)."""
    return await start_webhook_bot(api, start_bot, None)


@pytest.fixture
async def short_bot(api: BotApiStandIn, start_bot: RuntimeFactory, short_timeouts: str) -> Runtime:
    """The bot in webhook mode with the short timeouts."""
    return await start_webhook_bot(api, start_bot, short_timeouts)


@pytest.fixture
def base(bot: Runtime) -> str:
    return f"http://127.0.0.1:{bot.config.http_port}"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe=True: keep the cookies of a server named by its IP address, 127.0.0.1.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


class Raw:
    """One TCP connection to the bot, written to byte by byte if need be.

    A plain socket, not asyncio's streams: a server that gives up on a client
    may reset the connection right after its answer, and ``recv`` still hands
    over what came before the reset, where a ``StreamReader`` would raise first.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls, port: int) -> Raw:
        sock = socket.socket()
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return cls(sock)

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def trickle(self, data: bytes, every: float) -> None:
        """One byte at a time, until the server closes the connection."""
        try:
            for byte in data:
                if self.sock.fileno() == -1:
                    return
                await self.send(bytes([byte]))
                await asyncio.sleep(every)
        except OSError:  # reset, or closed by until_closed
            pass

    async def until_closed(self, since: float | None = None) -> tuple[bytes, float]:
        """All the server sends until it closes the connection, and the seconds since
        ``since`` (a ``loop.time()``; by default now) that took.

        Fails fast if the server keeps it open past every timeout and margin.
        """
        start, received = since or self.loop.time(), b""
        try:
            async with asyncio.timeout(KEEPALIVE + BODY + HEADER + 2 * MARGIN):
                while chunk := await self.loop.sock_recv(self.sock, 65536):
                    received += chunk
        except ConnectionError:
            pass
        except TimeoutError:
            raise AssertionError(f"still open after {self.loop.time() - start:.1f} s") from None
        finally:
            self.sock.close()
        return received, self.loop.time() - start

    async def response_head(self) -> bytes:
        received = b""
        async with asyncio.timeout(10):
            while b"\r\n\r\n" not in received:
                chunk = await self.loop.sock_recv(self.sock, 1)
                assert chunk, f"closed after {received!r}"
                received += chunk
        return received


def head(method: str, path: str, *lines: str) -> bytes:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *lines, "", ""]).encode()


def server_headers(raw_head: bytes) -> list[str]:
    lines = raw_head.decode("latin-1").split("\r\n")
    return [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("server:")]


async def rows() -> dict[str, int]:
    return {
        "residents": await Resident.all().count(),
        "identities": await ChannelIdentity.all().count(),
        "events": await ProcessedEvent.all().count(),
        "dialogs": await DialogState.all().count(),
    }


# --- configuration ------------------------------------------------------------
def test_the_timeouts_have_defaults_and_are_read_from_the_http_section(short_timeouts: str) -> None:
    defaults = load(None, {}).http_timeouts
    assert (defaults.header_seconds, defaults.body_seconds, defaults.keepalive_seconds) == (
        10.0,
        30.0,
        75.0,
    )
    read = load(short_timeouts, {}).http_timeouts
    assert (read.header_seconds, read.body_seconds, read.keepalive_seconds) == (
        HEADER,
        BODY,
        KEEPALIVE,
    )


@pytest.mark.parametrize("value", ["0", "-1", "0.1", "3601", '"ten"', "true", "nan", "inf"])
@pytest.mark.parametrize(
    "key", ["header_timeout_seconds", "body_timeout_seconds", "keepalive_timeout_seconds"]
)
def test_a_bad_timeout_is_named_with_what_is_expected(tmp_path: Path, key: str, value: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[http]\n{key} = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load(str(path), {})
    assert raised.value.key == f"http.{key}"
    assert raised.value.expected == "a number of seconds from 0.5 to 3600"


# --- timeouts -----------------------------------------------------------------
@sqlite_only
@pytest.mark.parametrize("client", ["stops", "trickles"])
async def test_a_head_sent_in_part_is_closed_after_the_header_timeout(
    short_bot: Runtime, client: str
) -> None:
    raw = await Raw.open(short_bot.config.http_port)
    await raw.send(head("POST", WEBHOOK_PATH).removesuffix(b"\r\n\r\n") + b"\r\n")
    if client == "trickles":  # slowloris: a byte now and then, never the end of the head
        sending = asyncio.create_task(raw.trickle(b"X-Slow: " + b"a" * 200, every=0.2))
    received, took = await raw.until_closed()
    if client == "trickles":
        await sending
    assert received == b""  # closed without an answer: nobody to answer yet
    assert HEADER - EARLY <= took < HEADER + MARGIN


@sqlite_only
@pytest.mark.parametrize("client", ["trickles", "falls short", "breaks its chunking"])
async def test_a_body_that_is_too_slow_gets_408_and_is_closed_and_has_no_effect(
    short_bot: Runtime, client: str
) -> None:
    secret = f"{SECRET_HEADER}: {WEBHOOK_SECRET}"

    async def one() -> tuple[bytes, float]:
        raw = await Raw.open(short_bot.config.http_port)
        sending, start = None, raw.loop.time()
        if client == "trickles":  # 1000 bytes at 5 a second would take 200 s
            await raw.send(head("POST", WEBHOOK_PATH, secret, "Content-Length: 1000"))
            sending = asyncio.create_task(raw.trickle(b'{"update_id": 1' + b" " * 985, 0.2))
        elif client == "falls short":  # says 1000 bytes, sends 16 and waits
            await raw.send(head("POST", WEBHOOK_PATH, secret, "Content-Length: 1000"))
            await raw.send(b'{"update_id": 1}')
        else:
            # A chunk, then a chunk size that is not hex: aiohttp queues its 400
            # behind the request, whose body then never ends.
            await raw.send(head("POST", WEBHOOK_PATH, secret, "Transfer-Encoding: chunked"))
            await raw.send(b'6\r\n{"upda\r\n')
            await asyncio.sleep(0.2)
            await raw.send(b"zz\r\n")
        received, took = await raw.until_closed(since=start)
        if sending is not None:
            await sending
        return received, took

    # Twenty at once, as in the report (they all stayed open 30 s).
    for received, took in await asyncio.gather(*(one() for _ in range(20))):
        status_line, _, rest = received.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 408 Request Timeout"
        assert server_headers(received.split(b"\r\n\r\n")[0]) == [SERVER]
        assert b"\r\nConnection: close\r\n" in rest
        assert BODY - EARLY <= took < BODY + MARGIN
    assert await ProcessedEvent.all().count() == 0  # the update was never handled


@sqlite_only
@pytest.mark.parametrize("before", ["a request", "nothing"])
async def test_an_idle_connection_is_closed_after_the_keepalive_timeout_not_before(
    short_bot: Runtime, before: str
) -> None:
    raw = await Raw.open(short_bot.config.http_port)
    if before == "a request":
        await raw.send(head("GET", "/healthz"))
        response = await raw.response_head()
        assert response.startswith(b"HTTP/1.1 200 OK")
        assert b"\r\nContent-Length: 16\r\n" in response
        assert await raw.loop.sock_recv(raw.sock, 16) == b'{"status": "ok"}'
    received, took = await raw.until_closed()
    assert received == b""
    # Not before: the header timeout (1 s) is for a head under way, not an idle connection.
    assert KEEPALIVE - EARLY <= took < KEEPALIVE + MARGIN


@sqlite_only
async def test_a_websocket_outlives_every_timeout(
    short_bot: Runtime, http: aiohttp.ClientSession
) -> None:
    base = f"http://127.0.0.1:{short_bot.config.http_port}"
    async with http.get(f"{base}/") as page:  # the page sets the cookie the socket needs
        assert page.status == 200
    # Latvian: nobody has chosen a language yet. The help, then the question again.
    help_lv = translator("lv").gettext(HELP, municipality="Demo novads")

    async def ask_for_help(ws: aiohttp.ClientWebSocketResponse, frame_id: str) -> str:
        await ws.send_json({"type": "text", "id": frame_id, "text": "/help"})
        assert (await ws.receive_json())["type"] == "ui"
        answer = await ws.receive_json()
        assert answer["type"] == "message"
        return str(answer["text"])

    async with http.ws_connect(f"{base}/ws", origin=base) as ws:
        assert (await ws.receive_json())["type"] == "ui"
        assert (await ws.receive_json())["type"] == "message"  # the language question
        await asyncio.sleep(KEEPALIVE + 1.5)  # idle past every timeout
        assert (await ask_for_help(ws, "t-1")).startswith(help_lv + "\n\n")
        # Frames are no request head: what the socket carries starts no head timer.
        await asyncio.sleep(HEADER + 1)
        assert (await ask_for_help(ws, "t-2")).startswith(help_lv + "\n\n")


@sqlite_only
async def test_long_polling_is_not_cut_by_the_servers_timeouts(
    api: BotApiStandIn, start_bot: RuntimeFactory, short_timeouts: str
) -> None:
    """The bot's own request to Telegram is outgoing: the server's timeouts are not its."""
    await start_bot(short_timeouts, **telegram_env(api))
    anna = Chat(api, ANNA)
    await api.wait_until(lambda: len(api.requests_of("getUpdates")) >= 1)
    await asyncio.sleep(KEEPALIVE + 1.5)
    (question,) = await anna.send("/start")
    assert question.button_texts() == [["Latviešu", "English", "Русский"]]


@sqlite_only
@pytest.mark.parametrize(
    ("client", "answer"),
    [
        ("leaves half-way through its body", b""),
        ("sends a header line without a colon", b"HTTP/1.0 400 Bad Request"),
    ],
)
async def test_a_broken_request_gets_an_answer_and_no_traceback(
    bot: Runtime, caplog: pytest.LogCaptureFixture, client: str, answer: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    raw = await Raw.open(bot.config.http_port)
    secret = f"{SECRET_HEADER}: {WEBHOOK_SECRET}"
    if client.startswith("leaves"):
        await raw.send(head("POST", WEBHOOK_PATH, secret, "Content-Length: 1000") + b'{"upd')
        raw.sock.shutdown(socket.SHUT_WR)
    else:
        await raw.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n")
    received, took = await raw.until_closed()
    assert received.split(b"\r\n", 1)[0] == answer
    assert took < MARGIN  # at once, not after a timeout
    await asyncio.sleep(0.2)  # aiohttp logs once the connection is done with
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


# --- the Server header --------------------------------------------------------
@sqlite_only
async def test_every_response_names_the_server_plainly(
    bot: Runtime, base: str, http: aiohttp.ClientSession
) -> None:
    answers: dict[str, tuple[int, list[str]]] = {}

    async def note(name: str, response: aiohttp.ClientResponse) -> None:
        answers[name] = (response.status, response.headers.getall("Server", []))

    for name, method, path in [
        ("socket without cookie", "GET", "/ws"),
        ("page", "GET", "/"),
        ("script", "GET", "/static/chat.js"),
        ("health", "GET", "/healthz"),
        ("no such page", "GET", "/nope"),
        ("no such image", "GET", "/media/" + "0" * 64),
        ("wrong method", "POST", "/healthz"),
        ("no secret", "POST", WEBHOOK_PATH),
    ]:
        async with http.request(method, f"{base}{path}") as response:
            await note(name, response)
    async with http.post(
        f"{base}{WEBHOOK_PATH}", data=b"x" * (2 * 1024 * 1024), headers={SECRET_HEADER: "x"}
    ) as response:
        await note("too large", response)
    async with http.post(
        f"{base}{WEBHOOK_PATH}", data=b"[", headers={SECRET_HEADER: WEBHOOK_SECRET}
    ) as response:
        await note("not an update", response)
    assert answers == {
        "page": (200, [SERVER]),
        "script": (200, [SERVER]),
        "health": (200, [SERVER]),
        "no such page": (404, [SERVER]),
        "no such image": (404, [SERVER]),
        "wrong method": (405, [SERVER]),
        "no secret": (403, [SERVER]),
        "socket without cookie": (403, [SERVER]),
        "too large": (413, [SERVER]),
        "not an update": (400, [SERVER]),
    }

    # A request aiohttp cannot parse never reaches the application.
    raw = await Raw.open(bot.config.http_port)
    await raw.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n")
    received, _ = await raw.until_closed()
    assert received.startswith(b"HTTP/1.0 400 Bad Request")
    assert server_headers(received.split(b"\r\n\r\n")[0]) == [SERVER]

    # The WebSocket upgrade, as a browser sends it with the cookie of the page.
    cookie = "; ".join(f"{c.key}={c.value}" for c in http.cookie_jar)
    raw = await Raw.open(bot.config.http_port)
    await raw.send(
        head(
            "GET",
            "/ws",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Origin: http://127.0.0.1",  # the page's own, as Host names it
            f"Cookie: {cookie}",
        )
    )
    upgrade = await raw.response_head()
    raw.sock.close()
    assert upgrade.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert server_headers(upgrade) == [SERVER]


# --- the webhook's body and secret --------------------------------------------
@sqlite_only
@pytest.mark.parametrize("sent", ["with Content-Length", "chunked"])
async def test_a_webhook_body_over_a_megabyte_gets_413(
    bot: Runtime, base: str, http: aiohttp.ClientSession, sent: str
) -> None:
    update = json.dumps({"update_id": 7, "padding": "x" * (2 * 1024 * 1024)}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(update), 65536):
            yield update[start : start + 65536]

    async with http.post(
        f"{base}{WEBHOOK_PATH}",
        data=update if sent == "with Content-Length" else chunks(),
        headers={SECRET_HEADER: WEBHOOK_SECRET, "Content-Type": "application/json"},
    ) as response:
        assert response.status == 413
    assert await rows() == {"residents": 0, "identities": 0, "events": 0, "dialogs": 0}


@sqlite_only
async def test_a_secret_header_that_is_not_utf8_gets_403_and_no_traceback(
    bot: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = b'{"update_id": 1}'

    async def post(secret: bytes) -> bytes:
        raw = await Raw.open(bot.config.http_port)
        await raw.send(
            head("POST", WEBHOOK_PATH, f"Content-Length: {len(body)}", "Connection: close").replace(
                b"\r\n\r\n", b"\r\n" + SECRET_HEADER.encode() + b": " + secret + b"\r\n\r\n"
            )
            + body
        )
        received, _ = await raw.until_closed()
        return received.split(b"\r\n", 1)[0]

    for secret in (b"\xff\xfe\xfd", WEBHOOK_SECRET.encode() + b"\xe9", "ā".encode()):
        assert await post(secret) == b"HTTP/1.1 403 Forbidden", secret
    assert await post(WEBHOOK_SECRET.encode()) == b"HTTP/1.1 200 OK"  # the same path, right secret
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert failures == []
    refused = [r.getMessage() for r in caplog.records if "wrong secret" in r.getMessage()]
    assert refused == ["telegram webhook: wrong secret token from 127.0.0.1"] * 3


# --- updates of the wrong shape -----------------------------------------------
def malformed_updates(template: JSONDict) -> dict[str, tuple[JSONDict, str]]:
    """Updates Telegram never sends, each with the field the warning must name."""

    def message(**changes: Any) -> JSONDict:
        update = text_update(template, "/mydata")
        update["message"].update(changes)
        return update

    def sender(user_id: object) -> JSONDict:
        update = text_update(template, "/mydata")
        if user_id is ...:
            del update["message"]["from"]["id"]
        else:
            update["message"]["from"]["id"] = user_id
        return update

    def location(**where: object) -> JSONDict:
        update = text_update(template, "/mydata")
        for key in ("text", "entities"):
            del update["message"][key]
        update["message"]["location"] = where
        return update

    def chat(chat_id: object) -> JSONDict:
        update = text_update(template, "/mydata")
        update["message"]["chat"]["id"] = chat_id
        return update

    def press(**query: Any) -> JSONDict:
        update = text_update(template, "/mydata")
        user = update.pop("message")["from"]
        update["callback_query"] = {"id": "1", "from": user, "data": "menu:help", **query}
        return update

    user = template["message"]["from"]
    return {
        "from.id letters": (sender("abc"), "message.from.id: not a Telegram user id"),
        "from.id digits as a string": (
            sender(str(ANNA)),
            "message.from.id: not a Telegram user id",
        ),
        "from.id fraction": (sender(1001.5), "message.from.id: not a Telegram user id"),
        "from.id true": (sender(True), "message.from.id: not a Telegram user id"),
        "from.id negative": (sender(-ANNA), "message.from.id: not a Telegram user id"),
        "from.id over 52 bits": (sender(2**60), "message.from.id: not a Telegram user id"),
        "from.id null": (sender(None), "message.from.id: not a Telegram user id"),
        "from without id": (sender(...), "message.from.id: missing"),
        "chat.id letters": (chat("abc"), "message.chat.id: not a Telegram chat id"),
        "message not an object": (
            {"update_id": 900_000_000, "message": 7},
            "message: not an object",
        ),
        "text a number": (message(text=5), "message.text: not a string"),
        "text a lone surrogate": (message(text="\ud800"), "message.text: not a string"),
        "entities not a list": (message(entities="x"), "message.entities: not a list"),
        "latitude of 400 digits": (
            location(latitude=10**400, longitude=24.1),
            "message.location.latitude: not a latitude",
        ),
        "longitude a string": (
            location(latitude=56.9, longitude="24.1"),
            "message.location.longitude: not a longitude",
        ),
        "update_id over 63 bits": (
            {**text_update(template, "/mydata"), "update_id": 2**70},
            "update_id: not an update id",
        ),
        "press from.id letters": (
            press(**{"from": {**user, "id": "abc"}}),
            "callback_query.from.id: not a Telegram user id",
        ),
        "press data a number": (press(data=12), "callback_query.data: not a string"),
        "press not an object": (
            {"update_id": 900_000_001, "callback_query": "x"},
            "callback_query: not an object",
        ),
    }


@pytest.mark.storage
async def test_a_malformed_update_is_acknowledged_and_dropped_with_one_line(
    api: BotApiStandIn, bot: Runtime, base: str, http: aiohttp.ClientSession, caplog: Any
) -> None:
    """Acknowledged with 200: Telegram sends again what is not, and this never gets better."""
    anna = Chat(api, ANNA)
    await anna.send("/start")
    before = await rows()
    assert before == {"residents": 1, "identities": 1, "events": 1, "dialogs": 1}

    for name, (update, field) in malformed_updates(anna.last_update).items():
        caplog.clear()
        with caplog.at_level(logging.INFO):
            async with http.post(
                f"{base}{WEBHOOK_PATH}",
                data=json.dumps(update),
                headers={SECRET_HEADER: WEBHOOK_SECRET, "Content-Type": "application/json"},
            ) as response:
                assert response.status == 200, name
        assert await rows() == before, name
        lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("bot")]
        assert lines == [
            ("WARNING", f"telegram webhook: a malformed update was dropped ({field})")
        ], name
        assert not any(r.exc_info for r in caplog.records), name
    assert len(anna.messages) == 1  # nobody was answered, not Anna either

    # The bot carries on: the same update, well-formed, is handled.
    (answer,) = await anna.send("/help")
    assert answer.text.startswith("I am the residents' assistant of")
