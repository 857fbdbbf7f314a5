"""The web chat against a hostile client, over real HTTP and WebSockets (aiohttp's client).

Each test starts the whole bot as ``iesaiste run`` does (SQLite, then PostgreSQL) and plays
one or many browsers: a browser is a cookie, and its address is the peer's (127.0.0.1) or,
behind a trusted proxy, what X-Forwarded-For says.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import Runtime
from bot.channels.webchat import (
    COOKIE,
    RENEW_CLOSE,
    client_address,
    too_many_newcomers,
    verify,
)
from bot.core.config import demo_municipality
from bot.core.i18n import translator
from storage.models import ChannelIdentity, NewcomerCount, ProcessedEvent, Resident
from tests.conftest import RuntimeFactory

pytestmark = pytest.mark.storage

LV, EN = translator("lv"), translator("en")
GREETING_LV = LV.gettext(
    "Hello! I am the residents' assistant of {municipality}. Here you can follow what "
    "happens in your neighbourhood and have your say.\n\nPlease choose your language:",
    municipality="Demo novads",
)
NEIGHBOURHOOD_QUESTION = (
    "Which neighbourhood do you live in, or care about most? "
    "You will get the news and questions that concern it.\n\n"
    "Choose below, or type its name."
)
TOPICS_QUESTION = "Which topics interest you?"
UNREADABLE = "I could not read that message. Please try again."
THROTTLED = re.compile(
    r"You are sending messages faster than I can read them\. "
    r"Please wait (\d+) seconds?, then carry on\."
)
FRAME_TIMEOUT = 10  # seconds: generous, a frame comes in milliseconds


def config_file(tmp_path: Path, settings: str) -> str:
    """A configuration file with ``settings`` (TOML tables) for the demo municipality."""
    lines = [settings, "[municipality]", 'name = "Demo novads"']
    m = demo_municipality()
    for key, items in (("neighbourhoods", m.neighbourhoods), ("topics", m.topics)):
        for item in items:
            names = ", ".join(f'{language} = "{name}"' for language, name in item.names.items())
            lines += [f"[[municipality.{key}]]", f'id = "{item.id}"', f"name = {{ {names} }}"]
            if item.short:
                short = ", ".join(f'{language} = "{name}"' for language, name in item.short.items())
                lines.append(f"short = {{ {short} }}")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def base_url(runtime: Runtime) -> str:
    return f"http://127.0.0.1:{runtime.config.http_port}"


async def new_cookie(base: str, **headers: str) -> str:
    """What GET / gives a browser with no cookie: a fresh signed cookie."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(base + "/", headers=headers) as response:
            assert response.status == 200
            return response.cookies[COOKIE].value


@dataclass
class Tab:
    """One open chat tab: a WebSocket to /ws with a browser's cookie."""

    ws: aiohttp.ClientWebSocketResponse

    async def frames(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` frames that are not the page's strings (``ui``)."""
        got: list[dict[str, Any]] = []
        while len(got) < count:
            message = await self.ws.receive(timeout=FRAME_TIMEOUT)
            assert message.type is aiohttp.WSMsgType.TEXT, (message.type, message.data)
            frame = json.loads(message.data)
            if frame["type"] != "ui":
                got.append(frame)
        return got

    async def frame(self) -> dict[str, Any]:
        [frame] = await self.frames(1)
        return frame

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))

    async def press(self, payload: str, frame_id: str = "") -> None:
        await self.send({"type": "button", "id": frame_id or new_id(), "payload": payload})

    async def choose(self, shown: dict[str, Any], state: str, value: str) -> None:
        """Press the button of step ``state`` with ``value`` on the message ``shown`` (its
        payload names the dialog's instance too)."""
        for row in shown["buttons"]:
            for button in row:
                tagged, _, got = button["payload"].rpartition(":")
                if tagged.partition("~")[0] == state and got == value:
                    await self.press(button["payload"])
                    return
        raise AssertionError(f"no button {state}:{value} in {shown}")

    async def say(self, text: str, frame_id: str = "") -> None:
        await self.send({"type": "text", "id": frame_id or new_id(), "text": text})


_ids = iter(range(1, 1_000_000))


def new_id() -> str:
    return f"frame-{next(_ids)}"


@asynccontextmanager
async def tab(base: str, cookie: str, **headers: str) -> AsyncIterator[Tab]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.ws_connect(
            base.replace("http://", "ws://") + "/ws",
            headers={"Cookie": f"{COOKIE}={cookie}", "Origin": base, **headers},
        ) as ws:
            yield Tab(ws)


async def wait_clear_of_the_hour() -> None:
    """The limit counts per clock hour: keep a test's few seconds inside one hour."""
    left = 3600 - datetime.now(UTC).timestamp() % 3600
    if left < 30:
        await asyncio.sleep(left + 1)


def minutes_to_the_hour() -> int:
    return math.ceil((3600 - datetime.now(UTC).timestamp() % 3600) / 60)


def refusal(tr: Any, minutes: set[int]) -> set[str]:
    return {too_many_newcomers(tr, n) for n in minutes}


async def residents() -> int:
    return await Resident.all().count()


# --- opening the page creates nobody ------------------------------------------------
async def test_opening_the_chat_creates_nobody_until_the_person_answers(
    start_bot: RuntimeFactory,
) -> None:
    base = base_url(await start_bot())
    cookie = await new_cookie(base)
    for _ in range(3):
        async with tab(base, cookie) as opened:
            greeting = await opened.frame()
            assert (greeting["type"], greeting["text"]) == ("message", GREETING_LV)
            assert [b["payload"] for row in greeting["buttons"] for b in row] == [
                "onb:language:lv",
                "onb:language:en",
                "onb:language:ru",
            ]
    assert (await residents(), await ChannelIdentity.all().count()) == (0, 0)

    async with tab(base, cookie) as opened:
        await opened.frame()
        await opened.press("onb:language:en")
        assert (await opened.frame())["text"] == NEIGHBOURHOOD_QUESTION
    [identity] = await ChannelIdentity.all()
    assert identity.external_id == cookie.split(".")[0]
    assert (await Resident.get()).language == "en"


async def test_a_typed_language_answers_the_first_question_too(start_bot: RuntimeFactory) -> None:
    base = base_url(await start_bot())
    async with tab(base, await new_cookie(base)) as opened:
        await opened.frame()
        await opened.say("English")
        assert (await opened.frame())["text"] == NEIGHBOURHOOD_QUESTION
    assert (await Resident.get()).language == "en"


# --- new residents per address ------------------------------------------------------
async def test_new_residents_per_address_are_limited_and_told_when_to_try_again(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    runtime = await start_bot(
        config_file(tmp_path, "[webchat]\nnew_residents_per_address_per_hour = 2\n")
    )
    base = base_url(runtime)
    await wait_clear_of_the_hour()
    admitted = []
    for _ in range(2):
        cookie = await new_cookie(base)
        async with tab(base, cookie) as opened:
            assert (await opened.frame())["text"] == GREETING_LV
            await opened.press("onb:language:en")
            assert (await opened.frame())["text"] == NEIGHBOURHOOD_QUESTION
        admitted.append(cookie)
    assert await residents() == 2

    # A third fresh cookie from the same address: told at once why, and when to come back.
    before = minutes_to_the_hour()
    async with tab(base, await new_cookie(base)) as refused:
        ui = await refused.ws.receive_json(timeout=FRAME_TIMEOUT)
        assert (ui["type"], ui["lang"]) == ("ui", "lv")
        said = await refused.frame()
        assert said["type"] == "error"
        assert said["text"] in refusal(LV, {before, minutes_to_the_hour()})
        # Pressing the button anyway (as from a greeting shown a moment before) creates nobody.
        await refused.press("onb:language:en")
        said = await refused.frame()
        assert said["type"] == "error"
        assert said["text"] in refusal(LV, {before, minutes_to_the_hour()})
    assert await residents() == 2

    # Those already made carry on.
    async with tab(base, admitted[0]) as back:
        question = await back.frame()
        assert question["text"] == NEIGHBOURHOOD_QUESTION
        await back.choose(question, "onb:neighbourhood", "centrs")
        assert (await back.frame())["text"].startswith(TOPICS_QUESTION)

    # The count is kept under a keyed hash of the address, never the address itself.
    [row] = await NewcomerCount.all()
    assert re.fullmatch(r"[0-9a-f]{32}", row.address)
    assert "127.0.0.1" not in row.address


async def test_behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    runtime = await start_bot(
        config_file(
            tmp_path,
            '[http]\ntrusted_proxies = ["127.0.0.1"]\n'
            "[webchat]\nnew_residents_per_address_per_hour = 1\n",
        )
    )
    base = base_url(runtime)
    await wait_clear_of_the_hour()

    async def first_answer(forwarded: str) -> str:
        async with tab(base, await new_cookie(base), **{"X-Forwarded-For": forwarded}) as opened:
            said = await opened.frame()
            if said["type"] == "error":
                return "refused"
            await opened.press("onb:language:en")
            assert (await opened.frame())["text"] == NEIGHBOURHOOD_QUESTION
            return "admitted"

    assert await first_answer("203.0.113.5") == "admitted"
    # The same client again, also when it writes a hop of its own in front, or comes
    # through a second trusted proxy.
    assert await first_answer("203.0.113.5") == "refused"
    assert await first_answer("198.51.100.1, 203.0.113.5") == "refused"
    assert await first_answer("203.0.113.5, 127.0.0.1") == "refused"
    # Another client behind the same proxy is counted apart.
    assert await first_answer("198.51.100.7") == "admitted"
    assert await residents() == 2


async def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    runtime = await start_bot(
        config_file(tmp_path, "[webchat]\nnew_residents_per_address_per_hour = 1\n")
    )
    base = base_url(runtime)
    await wait_clear_of_the_hour()
    async with tab(base, await new_cookie(base), **{"X-Forwarded-For": "203.0.113.5"}) as one:
        await one.frame()
        await one.press("onb:language:en")
        assert (await one.frame())["text"] == NEIGHBOURHOOD_QUESTION
    before = minutes_to_the_hour()
    async with tab(base, await new_cookie(base), **{"X-Forwarded-For": "198.51.100.7"}) as two:
        said = await two.frame()
        assert said["type"] == "error"
        assert said["text"] in refusal(LV, {before, minutes_to_the_hour()})
    assert await residents() == 1


def test_the_client_address_is_the_right_most_hop_no_trusted_proxy_added() -> None:
    trusted = (ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("10.0.0.0/8"))
    assert client_address("203.0.113.5", ["198.51.100.1"], trusted) == "203.0.113.5"
    assert client_address("127.0.0.1", [], trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", ["198.51.100.1, 203.0.113.5"], trusted) == "203.0.113.5"
    assert client_address("::ffff:127.0.0.1", ["203.0.113.5"], trusted) == "203.0.113.5"
    assert client_address("127.0.0.1", ["203.0.113.5", "10.1.2.3"], trusted) == "203.0.113.5"
    assert client_address("127.0.0.1", ["10.1.2.3, 127.0.0.1"], trusted) == "10.1.2.3"
    assert client_address("127.0.0.1", ["1.2.3.4, not-an-address"], trusted) == "not-an-address"
    assert client_address("127.0.0.1", ["203.0.113.5"], ()) == "127.0.0.1"


# --- the throttle ---------------------------------------------------------------------
async def test_opening_tabs_is_not_counted_and_a_throttled_tab_says_how_long_to_wait(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    runtime = await start_bot(
        config_file(tmp_path, "[limits]\nthrottle_messages = 3\nthrottle_seconds = 600\n")
    )
    base = base_url(runtime)
    cookie = await new_cookie(base)
    async with tab(base, cookie) as first:
        await first.frame()
        await first.press("onb:language:en")  # message 1 of 3
        assert (await first.frame())["text"] == NEIGHBOURHOOD_QUESTION

    # Ten tabs: each shows the open question; none of them is a message.
    for _ in range(10):
        async with tab(base, cookie) as opened:
            assert (await opened.frame())["text"] == NEIGHBOURHOOD_QUESTION

    async with tab(base, cookie) as flooding:
        assert (await flooding.frame())["text"] == NEIGHBOURHOOD_QUESTION
        for text in ("a", "b"):  # messages 2 and 3: answered
            await flooding.say(text)
            assert (await flooding.frame())["text"].endswith(NEIGHBOURHOOD_QUESTION)
        await flooding.say("c")  # message 4: over the limit, told how long to wait
        warned = THROTTLED.fullmatch((await flooding.frame())["text"])
        assert warned is not None and 590 <= int(warned[1]) <= 600

        # A tab opened now says the same, never an empty chat.
        async with tab(base, cookie) as late:
            said = await late.frame()
            assert said["type"] == "message"
            waiting = THROTTLED.fullmatch(said["text"])
            assert waiting is not None and 0 < int(waiting[1]) <= int(warned[1])
            assert said["buttons"] == []


# --- the cookie -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "secure"),
    [
        ("", False),
        ('[http]\npublic_url = "http://bot.example.lv"\n', False),
        ('[http]\npublic_url = "https://bot.example.lv"\n', True),
        ("[webchat]\nsecure_cookie = true\n", True),
    ],
)
async def test_the_cookie_is_secure_when_the_bot_is_reached_over_https(
    start_bot: RuntimeFactory, tmp_path: Path, settings: str, secure: bool
) -> None:
    base = base_url(await start_bot(config_file(tmp_path, settings)))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(base + "/") as page:
            [header] = page.headers.getall("Set-Cookie")
        cookie = page.cookies[COOKIE].value
        async with http.post(
            base + "/session", headers={"Cookie": f"{COOKIE}={cookie}", "Origin": base}
        ) as renewed:
            assert renewed.status == 204
            [renewed_header] = renewed.headers.getall("Set-Cookie")
    for set_cookie in (header, renewed_header):
        attributes = [part.strip() for part in set_cookie.split(";")]
        assert ("Secure" in attributes) is secure, set_cookie
        assert "HttpOnly" in attributes and "SameSite=Lax" in attributes, set_cookie


# --- forgetting ------------------------------------------------------------------------
async def test_a_forgotten_resident_gets_a_fresh_cookie_and_their_old_id_names_nobody(
    start_bot: RuntimeFactory,
) -> None:
    runtime = await start_bot()
    assert runtime.webchat is not None
    base = base_url(runtime)
    cookie = await new_cookie(base)
    async with tab(base, cookie) as talking, tab(base, cookie) as other:
        shown = await talking.frame()
        await other.frame()
        for state, value in (
            ("onb:language", "en"),
            ("onb:neighbourhood", "centrs"),
            ("onb:topics", "_done"),
            ("onb:privacy", "_yes"),
        ):
            await talking.choose(shown, state, value)
            shown = await talking.frame()
        await talking.say("/mydata")
        overview = await talking.frame()
        assert "everything we hold about you" in overview["text"]
        await talking.choose(overview, "data:overview", "delete")
        confirm = await talking.frame()
        await other.frames(6)  # the other tab was shown every answer meanwhile
        await talking.choose(confirm, "data:confirm", "_yes")
        # Both tabs see the answer, then their socket closes with the code that makes the
        # page fetch a new cookie.
        for closing in (talking, other):
            assert (await closing.frame())["text"].startswith("Your data has been deleted.")
            message = await closing.ws.receive(timeout=FRAME_TIMEOUT)
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert closing.ws.close_code == RENEW_CLOSE
    assert await residents() == 0

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:

        async def renew(with_cookie: str | None, origin: str = base) -> tuple[int, str]:
            headers = {"Origin": origin}
            if with_cookie is not None:
                headers["Cookie"] = f"{COOKIE}={with_cookie}"
            async with http.post(base + "/session", headers=headers) as response:
                fresh = response.cookies.get(COOKIE)
                return response.status, fresh.value if fresh is not None else ""

        status, fresh = await renew(cookie)
        assert status == 204
        old_id = verify(runtime.webchat.secret, cookie)
        new_id_ = verify(runtime.webchat.secret, fresh)
        assert old_id is not None and new_id_ is not None and new_id_ != old_id
        # Nobody may be made to lose their resident: no cookie, another site's page, or a
        # cookie somebody still stands behind gets no new cookie.
        assert await renew(None) == (403, "")
        assert await renew(cookie, origin="http://evil.example") == (403, "")
        async with tab(base, fresh) as again:
            assert (await again.frame())["text"] == GREETING_LV
            assert await residents() == 0
            await again.press("onb:language:en")
            await again.frame()
        assert await renew(fresh) == (409, "")
    [identity] = await ChannelIdentity.all()
    assert identity.external_id == new_id_


# --- hostile frames ---------------------------------------------------------------------
HOSTILE_NUMBERS = [
    '{"type": "location", "id": "l-1", "latitude": 1' + "0" * 400 + ', "longitude": 0}',
    '{"type": "location", "id": "l-2", "latitude": 0, "longitude": -1' + "0" * 400 + "}",
    '{"type": "location", "id": "l-3", "latitude": NaN, "longitude": 0}',
    '{"type": "location", "id": "l-4", "latitude": Infinity, "longitude": 0}',
    '{"type": "location", "id": "l-5", "latitude": 1e400, "longitude": 0}',
    '{"type": "location", "id": "l-6", "latitude": true, "longitude": 0}',
    '{"type": "location", "id": "l-7", "latitude": "56.9", "longitude": 24.1}',
]
HOSTILE_TEXT = [
    '{"type": "text", "id": "\\ud800", "text": "hello"}',
    '{"type": "text", "id": "t-1", "text": "Centre \\udfff"}',
    '{"type": "text", "id": "t-2", "text": "Centre\\u0000"}',
    '{"type": "button", "id": "b-1", "payload": "onb:neighbourhood:\\ud800"}',
    '{"type": "button", "id": "b-2", "payload": "onb:neighbourhood:centrs", '
    '"message_id": "m-\\udc00"}',
]


@pytest.mark.parametrize("hostile", [HOSTILE_NUMBERS, HOSTILE_TEXT], ids=["numbers", "text"])
async def test_hostile_frames_are_refused_in_the_residents_language_on_a_fresh_socket(
    start_bot: RuntimeFactory, caplog: pytest.LogCaptureFixture, hostile: list[str]
) -> None:
    base = base_url(await start_bot())
    cookie = await new_cookie(base)
    async with tab(base, cookie) as first:
        await first.frame()
        await first.press("onb:language:en")
        await first.frame()
    events = await ProcessedEvent.all().count()
    with caplog.at_level(logging.WARNING):
        async with tab(base, cookie) as fresh:
            question = await fresh.frame()
            assert question["text"] == NEIGHBOURHOOD_QUESTION
            for raw in hostile:
                await fresh.send(raw)
                assert await fresh.frame() == {"type": "error", "text": UNREADABLE}, raw
            # The socket is still there and the conversation goes on.
            await fresh.choose(question, "onb:neighbourhood", "centrs")
            assert (await fresh.frame())["text"].startswith(TOPICS_QUESTION)
            await fresh.send(
                {"type": "location", "id": "l-8", "latitude": 56.95, "longitude": 24.1}
            )
            answer = await fresh.frames(2)
            assert answer[-1]["text"].startswith(TOPICS_QUESTION)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert await ProcessedEvent.all().count() == events + 2


async def test_a_cookie_that_is_not_utf_8_is_a_stranger_s_not_a_server_error(
    start_bot: RuntimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    port = (await start_bot()).config.http_port

    async def status(method: str, path: str) -> tuple[bytes, bool]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
            f"Content-Length: 0\r\nCookie: {COOKIE}=".encode()
            + b"\xff\xfe.\xc4\x81bc\r\n\r\n"
        )
        await writer.drain()
        response = await reader.read()
        writer.close()
        await writer.wait_closed()
        head = response.split(b"\r\n\r\n", 1)[0]
        return head.split(b"\r\n", 1)[0], f"Set-Cookie: {COOKIE}=".encode() in head

    with caplog.at_level(logging.WARNING):
        assert await status("GET", "/") == (b"HTTP/1.1 200 OK", True)  # a fresh cookie
        assert await status("GET", "/ws") == (b"HTTP/1.1 403 Forbidden", False)
        assert await status("POST", "/session") == (b"HTTP/1.1 403 Forbidden", False)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


# --- duplicates -------------------------------------------------------------------------
async def test_a_frame_id_is_a_duplicate_only_for_the_resident_who_used_it(
    start_bot: RuntimeFactory,
) -> None:
    base = base_url(await start_bot())
    anna, juris = await new_cookie(base), await new_cookie(base)
    async with tab(base, anna) as annas, tab(base, juris) as juriss:
        questions = []
        for opened in (annas, juriss):
            await opened.frame()
            await opened.press("onb:language:en", frame_id="same-id")
            questions.append(await opened.frame())
            assert questions[-1]["text"] == NEIGHBOURHOOD_QUESTION
        # Anna's page sends "same-id" again: that is a repeat, and has no effect.
        await annas.say("/help", frame_id="same-id")
        await annas.choose(questions[0], "onb:neighbourhood", "centrs")
        assert (await annas.frame())["text"].startswith(TOPICS_QUESTION)
    rows = await ProcessedEvent.filter(event_id="same-id").order_by("id")
    resident_of = {
        i.external_id: i.resident_id  # type: ignore[attr-defined]
        for i in await ChannelIdentity.all()
    }
    assert [row.scope for row in rows] == [
        resident_of[anna.split(".")[0]],
        resident_of[juris.split(".")[0]],
    ]
