"""Messenger's sender against the strict Send API stand-in (real HTTP, no mocks)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from bot.channels.messenger_graph import GraphClient
from bot.channels.messenger_send import TOKEN_REFUSED, MessengerSender, messages_of
from bot.core.channel import ChannelDown, PushRefused, RateLimited, RecipientBlocked
from bot.core.messages import Button, Reply
from tests.standins.graph_api import GraphStandIn
from tests.standins.graph_core import PAGE_TOKEN, GraphFault, error_response

PSID = "6100000000000001"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
PUBLIC = "https://bot.example.lv"


def buttons(count: int, label: str = "Izvēle") -> list[list[Button]]:
    return [[Button(f"{label} {i}", f"poll:1:opt:{i}")] for i in range(count)]


# --- rendering (messages_of) ---------------------------------------------------
def test_a_long_text_is_cut_and_the_buttons_go_with_the_last_piece() -> None:
    text = ("Vārds " * 300 + "\n\n") * 2  # about 3600 characters
    messages = messages_of(Reply(text.strip(), buttons(5)))
    assert len(messages) == 2
    assert all(len(m["text"]) <= 2000 for m in messages)
    assert "quick_replies" not in messages[0] and len(messages[1]["quick_replies"]) == 5


def test_three_buttons_and_a_short_text_make_a_button_template() -> None:
    [message] = messages_of(Reply("Vai piekrītat?", buttons(3)))
    payload = message["attachment"]["payload"]
    assert payload["template_type"] == "button" and payload["text"] == "Vai piekrītat?"
    assert [b["type"] for b in payload["buttons"]] == ["postback"] * 3


def test_three_buttons_under_a_text_over_640_become_quick_replies() -> None:
    [message] = messages_of(Reply("x" * 641, buttons(3)))
    assert len(message["quick_replies"]) == 3


def test_four_to_thirteen_buttons_are_quick_replies() -> None:
    for count in (4, 13):
        [message] = messages_of(Reply("Izvēlieties", buttons(count)))
        assert [q["payload"] for q in message["quick_replies"]] == [
            f"poll:1:opt:{i}" for i in range(count)
        ]


def test_more_than_thirteen_buttons_are_all_sent_as_templates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        messages = messages_of(Reply("Izvēlieties", buttons(14)))
    payloads = [m["attachment"]["payload"] for m in messages]
    assert [p["text"] for p in payloads] == ["Izvēlieties"] + ["…"] * 4
    sent = [b["payload"] for p in payloads for b in p["buttons"]]
    assert sent == [f"poll:1:opt:{i}" for i in range(14)]
    assert "14 buttons" in caplog.text


def test_long_labels_are_shortened_to_twenty_characters() -> None:
    [message] = messages_of(Reply("?", [[Button("Pieteikt ierosinājumu pašvaldībai", "p")]]))
    title = message["attachment"]["payload"]["buttons"][0]["title"]
    assert len(title) == 20 and title.endswith("…")


def test_a_button_without_a_label_or_with_a_huge_payload_is_a_bug() -> None:
    with pytest.raises(ValueError):
        messages_of(Reply("?", [[Button("", "p")]]))
    with pytest.raises(ValueError):
        messages_of(Reply("?", [[Button("a", "ā" * 501)]]))  # 1002 bytes


def test_location_requests_and_edits_are_ignored() -> None:
    [message] = messages_of(Reply("Kur?", request_location="Sūtīt atrašanās vietu", replace=True))
    assert message == {"text": "Kur?"}


def test_images_go_first_by_public_url_or_as_a_local_path() -> None:
    public = messages_of(Reply("Skats", image="/media/a.png"), public_url=PUBLIC)
    assert public[0]["attachment"]["payload"] == {
        "url": PUBLIC + "/media/a.png",
        "is_reusable": True,
    }
    assert public[1] == {"text": "Skats"}
    private = messages_of(Reply("Foto", image="/photos/1.jpg"), public_url=PUBLIC)
    assert private[0]["attachment"]["payload"] == {"url": "/photos/1.jpg"}  # uploaded
    no_url = messages_of(Reply("", image="/media/a.png"))
    assert no_url == [{"attachment": {"type": "image", "payload": {"url": "/media/a.png"}}}]


# --- sending ---------------------------------------------------------------------
@dataclass
class Clock:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Runtime:
    graph: GraphStandIn
    sender: MessengerSender
    clock: Clock
    unsent: list[tuple[str, list[Reply]]]
    images: dict[str, bytes]
    requests: list[str]  # every request's path as it left, a refused one too


@pytest_asyncio.fixture
async def run(caplog: pytest.LogCaptureFixture) -> AsyncIterator[Runtime]:
    caplog.set_level(logging.DEBUG)
    graph = await GraphStandIn().start()
    graph.opened(PSID)
    clock = Clock()
    unsent: list[tuple[str, list[Reply]]] = []
    images = {"/photos/1.jpg": PNG}

    async def local_images(path: str) -> bytes | None:
        return images.get(path)

    async def on_unsent(recipient: str, rest: list[Reply]) -> None:
        unsent.append((recipient, rest))

    requests: list[str] = []

    async def on_request_start(session: object, context: object, params: object) -> None:
        requests.append(params.url.path.split("/", 2)[2])  # type: ignore[attr-defined]

    tracing = aiohttp.TraceConfig()
    tracing.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[tracing]) as session:
        sender = MessengerSender(
            GraphClient(session, graph.url, "v25.0", graph.token),
            public_url=PUBLIC,
            local_images=local_images,
            on_unsent=on_unsent,
            clock=lambda: clock.now,
            sleep=clock.sleep,
        )
        yield Runtime(graph, sender, clock, unsent, images, requests)
    await graph.stop()
    # No secret and no resident in clear, ever (the test's own lines: teardown sees its own).
    logged = caplog.get_records("call")
    for record in logged:
        line = record.getMessage() + (record.exc_text or "")
        assert PAGE_TOKEN not in line and PSID not in line, line


async def test_an_answer_goes_as_response_in_order(run: Runtime) -> None:
    await run.sender.answer(
        PSID, [Reply("Poga vairs nav derīga."), Reply("Izvēlieties", buttons(4))]
    )
    [received] = run.graph.inbox(PSID)  # the notice joined into the question
    assert received.text == "Poga vairs nav derīga.\n\nIzvēlieties"
    assert received.messaging_type == "RESPONSE" and len(received.quick_replies) == 4


async def test_fourteen_choices_reach_the_resident_all(run: Runtime) -> None:
    await run.sender.answer(PSID, [Reply("Izvēlieties", buttons(14))])
    taps = [payload for m in run.graph.inbox(PSID) for _, payload in m.choices]
    assert taps == [f"poll:1:opt:{i}" for i in range(14)]


async def test_a_private_photo_is_uploaded_and_a_public_one_goes_by_url(run: Runtime) -> None:
    await run.sender.answer(PSID, [Reply("Jūsu foto", image="/photos/1.jpg")])
    await run.sender.push(PSID, Reply("Paziņojums", image="/media/a.png"))
    photo, text, image, push_text = run.graph.inbox(PSID)
    assert run.graph.uploads[photo.attachment_id] == PNG and text.text == "Jūsu foto"
    assert image.image_url == PUBLIC + "/media/a.png" and image.messaging_type == "UPDATE"
    assert push_text.text == "Paziņojums"


async def test_an_image_that_is_gone_leaves_the_text_alone(run: Runtime) -> None:
    await run.sender.answer(PSID, [Reply("Foto", image="/photos/gone.jpg")])
    assert [(m.text, m.attachment_id) for m in run.graph.inbox(PSID)] == [("Foto", "")]


async def test_a_push_is_an_update_and_returns_the_last_mid(run: Runtime) -> None:
    mid = await run.sender.push(PSID, Reply("x " * 1500))
    first, last = run.graph.inbox(PSID)
    assert mid == last.message_id and {first.messaging_type, last.messaging_type} == {"UPDATE"}


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        (
            GraphFault(10, "(#10) This message is sent outside of allowed window.", 2018278),
            PushRefused,
        ),
        (
            GraphFault(551, "(#551) This person isn't available right now.", 1545041),
            RecipientBlocked,
        ),
        (GraphFault(551, "(#551) This person isn't receiving messages"), RecipientBlocked),
        (
            GraphFault(10, "(#10) They can't receive your messages right now", 2018108),
            RecipientBlocked,
        ),
        (GraphFault(100, "(#100) No matching user found", 2018001), RecipientBlocked),
        (GraphFault(4, "(#4) Application request limit reached"), RateLimited),
        (GraphFault(17, "(#17) User request limit reached"), RateLimited),
        (GraphFault(32, "(#32) Page request limit reached"), RateLimited),
        (GraphFault(613, "(#613) Calls to this api have exceeded the rate limit."), RateLimited),
        (GraphFault(2, "(#2) Service temporarily unavailable"), Exception),
        (GraphFault(1, "(#1) An unknown error occurred"), Exception),
        (GraphFault(1200, "(#1200) Temporary send message failure"), Exception),
        (GraphFault(1, "Internal", status=500), Exception),
    ],
)
async def test_meta_errors_become_the_delivery_outcomes(
    run: Runtime, fault: GraphFault, outcome: type[Exception]
) -> None:
    run.graph.core.fail_next("/me/messages", fault)
    with pytest.raises(outcome) as caught:
        await run.sender.push(PSID, Reply("Ziņa"))
    if outcome is Exception:  # another fault: the worker retries it later
        assert not isinstance(
            caught.value, PushRefused | RecipientBlocked | RateLimited | ChannelDown
        )
    if isinstance(caught.value, RateLimited):
        assert 30 <= caught.value.retry_after <= 60


async def test_the_real_policy_maps_too(run: Runtime) -> None:
    run.graph.opened(PSID, datetime.now(UTC) - timedelta(hours=25))
    with pytest.raises(PushRefused):
        await run.sender.push(PSID, Reply("Vēlu"))
    with pytest.raises(RecipientBlocked):
        await run.sender.push("6100000000000999", Reply("Kam?"))
    run.graph.block(PSID)
    with pytest.raises(RecipientBlocked):
        await run.sender.push(PSID, Reply("Vēlu"))


async def test_a_rate_limit_honours_the_time_to_regain_access(run: Runtime) -> None:
    run.graph.limit_rate(613, regain_minutes=3)
    with pytest.raises(RateLimited) as caught:
        await run.sender.push(PSID, Reply("Ziņa"))
    assert caught.value.retry_after == 180


async def test_a_staff_answer_outside_the_day_goes_with_human_agent(run: Runtime) -> None:
    run.sender.human_agent = True
    run.graph.human_agent_permission = True
    run.graph.opened(PSID, datetime.now(UTC) - timedelta(days=3))
    await run.sender.push(PSID, Reply("Jūsu ierosinājums ir pieņemts.", human=True))
    [received] = run.graph.inbox(PSID)
    assert (received.messaging_type, received.tag) == ("MESSAGE_TAG", "HUMAN_AGENT")
    with pytest.raises(PushRefused):  # the bot's own words never use the tag
        await run.sender.push(PSID, Reply("Paziņojums"))


async def test_human_agent_is_not_tried_when_the_page_may_not(run: Runtime) -> None:
    run.graph.human_agent_permission = True
    run.graph.opened(PSID, datetime.now(UTC) - timedelta(days=3))
    with pytest.raises(PushRefused):
        await run.sender.push(PSID, Reply("Atbilde", human=True))
    assert [c.body.get("messaging_type") for c in run.graph.core.calls] == ["UPDATE"]


async def test_human_agent_outside_the_week_waits(run: Runtime) -> None:
    run.sender.human_agent = True
    run.graph.human_agent_permission = True
    run.graph.opened(PSID, datetime.now(UTC) - timedelta(days=8))
    with pytest.raises(PushRefused):
        await run.sender.push(PSID, Reply("Atbilde", human=True))
    run.graph.human_agent_permission = False  # the setting on, but Meta did not grant it
    run.graph.opened(PSID, datetime.now(UTC) - timedelta(days=2))
    with pytest.raises(PushRefused):
        await run.sender.push(PSID, Reply("Atbilde", human=True))
    assert run.graph.sent == []


async def test_a_refused_token_stops_the_channel_until_a_probe_finds_it_good(
    run: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    run.graph.core.expire_token()
    for _ in range(3):
        with pytest.raises(ChannelDown) as caught:
            await run.sender.push(PSID, Reply("Ziņa"))
    assert caught.value.reason == TOKEN_REFUSED == run.sender.failing
    assert run.requests == ["me/messages"]  # no retry storm
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [f"messenger: {TOKEN_REFUSED}"]
    run.clock.now += 301  # a probe, still refused: still down, no send
    with pytest.raises(ChannelDown):
        await run.sender.push(PSID, Reply("Ziņa"))
    assert run.requests == ["me/messages", "me"]
    run.graph.core.token = PAGE_TOKEN  # the operator fixed the page's token
    run.clock.now += 100
    with pytest.raises(ChannelDown):  # not probed again before 5 minutes
        await run.sender.push(PSID, Reply("Ziņa"))
    assert len(run.requests) == 2
    run.clock.now += 201
    await run.sender.push(PSID, Reply("Ziņa"))
    assert run.sender.failing is None and len(run.graph.inbox(PSID)) == 1
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


async def test_an_answer_with_a_refused_token_goes_to_on_unsent(run: Runtime) -> None:
    run.graph.core.expire_token()
    await run.sender.answer(PSID, [Reply("Viens", buttons(2)), Reply("Divi", buttons(2))])
    assert run.sender.failing == TOKEN_REFUSED
    [(recipient, rest)] = run.unsent
    assert recipient == PSID and [r.text for r in rest] == ["Viens", "Divi"]


async def test_answer_tries_a_5xx_three_times_then_hands_the_rest_on(run: Runtime) -> None:
    async def image_then_faults(request: web.Request, call: dict[str, Any]) -> web.Response:
        if "attachment" in call["body"]["message"]:
            return await sends(request, call)
        return error_response(GraphFault(1, "Internal", status=500))

    sends = run.graph.core._routes[("POST", "/me/messages")]
    run.graph.core.route("POST", "/me/messages", image_then_faults)
    await run.sender.answer(PSID, [Reply("x " * 1500, image="/media/a.png")])
    (image,) = run.graph.inbox(PSID)  # the image went; both pieces of the text did not
    assert image.image_url and run.clock.slept == [0.5, 1.0]
    [(_, [rest])] = run.unsent
    assert rest.image == "" and rest.text.replace("\n\n", " ").split() == ["x"] * 1500


async def test_answer_recovers_from_a_5xx(run: Runtime) -> None:
    run.graph.core.fail_next("/me/messages", GraphFault(2, "(#2) Service temporarily unavailable"))
    await run.sender.answer(PSID, [Reply("Sveiki")])
    assert [m.text for m in run.graph.inbox(PSID)] == ["Sveiki"] and run.unsent == []


async def test_answer_when_meta_does_not_answer(run: Runtime) -> None:
    async def silent(request: web.Request, call: dict[str, object]) -> web.Response:
        raise ConnectionResetError  # aiohttp drops the connection: no answer at all

    run.graph.core.route("POST", "/me/messages", silent)
    await run.sender.answer(PSID, [Reply("Sveiki")])
    assert [r.text for r in run.unsent[0][1]] == ["Sveiki"] and len(run.clock.slept) == 2


async def test_answer_waits_out_a_short_rate_limit_only(run: Runtime) -> None:
    run.graph.limit_rate(613, regain_minutes=0.05)  # 3 s
    await run.sender.answer(PSID, [Reply("Viens")])
    assert [m.text for m in run.graph.inbox(PSID)] == ["Viens"] and run.clock.slept == [3.0]
    run.graph.limit_rate(613, regain_minutes=1)
    await run.sender.answer(PSID, [Reply("Divi", buttons(2))])
    assert [r.text for r in run.unsent[0][1]] == ["Divi"]


async def test_answer_to_a_blocked_resident_stops(
    run: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    run.graph.block(PSID)
    await run.sender.answer(PSID, [Reply("Viens", buttons(2)), Reply("Divi")])
    assert len(run.graph.core.calls) == 1 and run.unsent == []
    assert "cannot be reached" in caplog.text


async def test_a_refused_message_is_logged_and_the_next_goes(
    run: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    run.graph.core.fail_next("/me/messages", GraphFault(100, "(#100) Invalid parameter", 2018047))
    await run.sender.answer(PSID, [Reply("Viens", buttons(2)), Reply("Divi")])
    assert [m.text for m in run.graph.inbox(PSID)] == ["Divi"] and run.unsent == []
    assert "Graph API 100/2018047: (#100) Invalid parameter" in caplog.text


async def test_answer_never_raises(run: Runtime) -> None:
    await run.sender.answer(PSID, [Reply("?", [[Button("", "p")]]), Reply("Tālāk")])
    assert [m.text for m in run.graph.inbox(PSID)] == ["Tālāk"]
