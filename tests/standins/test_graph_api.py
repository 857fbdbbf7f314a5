"""The Send API stand-in refuses what Meta refuses and applies Meta's policy (real HTTP)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot.channels.messenger_graph import GraphClient, GraphError
from tests.standins.graph_api import GraphStandIn

PSID = "6100000000000001"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest_asyncio.fixture
async def graph() -> AsyncIterator[GraphStandIn]:
    standin = await GraphStandIn().start()
    standin.opened(PSID)
    yield standin
    await standin.stop()


@pytest_asyncio.fixture
async def client(graph: GraphStandIn) -> AsyncIterator[GraphClient]:
    async with aiohttp.ClientSession() as session:
        yield GraphClient(session, graph.url, "v25.0", graph.token)


def send(message: Any, messaging_type: str = "RESPONSE", **extra: Any) -> dict[str, Any]:
    body = {"recipient": {"id": PSID}, "messaging_type": messaging_type, "message": message}
    return {**body, **extra}


async def refusal(client: GraphClient, body: dict[str, Any]) -> GraphError:
    with pytest.raises(GraphError) as caught:
        await client.call("POST", "/me/messages", body=body)
    return caught.value


def quick(count: int, title: str = "Jā", payload: str = "yes") -> list[dict[str, str]]:
    return [
        {"content_type": "text", "title": title, "payload": f"{payload}{i}"} for i in range(count)
    ]


def template(text: str, buttons: list[tuple[str, str]]) -> dict[str, Any]:
    payload = {
        "template_type": "button",
        "text": text,
        "buttons": [{"type": "postback", "title": t, "payload": p} for t, p in buttons],
    }
    return {"attachment": {"type": "template", "payload": payload}}


async def test_a_text_reaches_the_residents_inbox(graph: GraphStandIn, client: GraphClient) -> None:
    answer = await client.call(
        "POST", "/me/messages", body=send({"text": "Sveiki", "quick_replies": quick(2)})
    )
    assert answer["recipient_id"] == PSID and answer["message_id"].startswith("m_")
    [received] = graph.inbox(PSID)
    assert received.text == "Sveiki" and received.messaging_type == "RESPONSE"
    assert received.quick_replies == (("Jā", "yes0"), ("Jā", "yes1"))


async def test_the_page_id_path_works_as_me(graph: GraphStandIn, client: GraphClient) -> None:
    await client.call("POST", f"/{graph.page_id}/messages", body=send({"text": "a"}))
    assert [m.text for m in graph.inbox(PSID)] == ["a"]


async def test_a_button_template_keeps_its_buttons(
    graph: GraphStandIn, client: GraphClient
) -> None:
    await client.call("POST", "/me/messages", body=send(template("Balsot?", [("Jā", "p:1")])))
    assert graph.inbox(PSID)[0].buttons == (("Jā", "p:1"),)


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"recipient": {"id": PSID}, "message": {"text": "a"}}, 100, "messaging_type is required"),
        (send({"text": "a"}, "PROMOTION"), 100, "messaging_type must be one of"),
        ({"messaging_type": "RESPONSE", "message": {"text": "a"}}, 100, "recipient"),
        (send({"text": "a"}, "MESSAGE_TAG", tag="ACCOUNT_UPDATE"), 100, "Invalid parameter"),
        (send({"text": "a"}, "MESSAGE_TAG"), 100, "Invalid parameter"),
        (send({"text": "a"}, tag="HUMAN_AGENT"), 100, "only allowed with"),
        (send({"text": "a"}, sender_action="typing_on"), 100, "either message or"),
        (send({}), 100, "exactly one of"),
        (send({"text": "a", "sticker_id": 369239263222822}), 100, "exactly one of"),
        (send({"text": ""}), 100, "message[text]"),
        (send({"text": "x" * 2001}), 100, "less than or equal to 2000"),
        (send({"text": "a", "quick_replies": quick(14)}), 105, "too many elements"),
        (send({"text": "a", "quick_replies": quick(1, title="x" * 21)}), 100, "[title]"),
        (send({"text": "a", "quick_replies": quick(1, title="")}), 100, "[title]"),
        (send({"text": "a", "quick_replies": quick(1, payload="x" * 1000)}), 100, "[payload]"),
        (
            send({"text": "a", "quick_replies": [{"content_type": "location"}]}),
            100,
            "Location Quick Reply is now deprecated on API 4.0.",
        ),
        (send(template("x" * 641, [("a", "b")])), 100, "less than or equal to 640"),
        (send(template("a", [])), 100, "1 to 3"),
        (send(template("a", [("a", "b")] * 4)), 100, "1 to 3"),
        (send(template("a", [("x" * 21, "b")])), 100, "[title]"),
        (send(template("a", [("a", "x" * 1001)])), 100, "[payload]"),
        (
            send({"attachment": {"type": "image", "payload": {"url": "/photos/1.jpg"}}}),
            100,
            "fetch",
        ),
        (send({"attachment": {"type": "image", "payload": {"attachment_id": "77"}}}), 100, "id"),
    ],
)
async def test_meta_refuses_what_breaks_its_rules(
    graph: GraphStandIn, client: GraphClient, body: dict[str, Any], code: int, words: str
) -> None:
    error = await refusal(client, body)
    assert error.code == code and words in error.message
    assert graph.sent == []


async def test_a_body_that_is_not_json_is_refused(graph: GraphStandIn, client: GraphClient) -> None:
    form = aiohttp.FormData({"recipient": PSID})
    with pytest.raises(GraphError) as caught:
        await client.call("POST", "/me/messages", form=form)
    assert caught.value.code == 100 and "must be JSON" in caught.value.message


async def test_limits_at_their_edge_are_accepted(graph: GraphStandIn, client: GraphClient) -> None:
    await client.call(
        "POST",
        "/me/messages",
        body=send({"text": "ā" * 2000, "quick_replies": quick(13, title="x" * 20)}),
    )
    await client.call("POST", "/me/messages", body=send(template("x" * 640, [("a" * 20, "p")] * 3)))
    assert len(graph.sent) == 2


async def test_an_unknown_psid_is_no_matching_user(client: GraphClient) -> None:
    error = await refusal(client, {**send({"text": "a"}), "recipient": {"id": "999"}})
    assert (error.code, error.subcode) == (100, 2018001)
    assert error.message == "(#100) No matching user found"


async def test_a_blocked_resident_is_551(graph: GraphStandIn, client: GraphClient) -> None:
    graph.block(PSID)
    error = await refusal(client, send({"text": "a"}))
    assert (error.code, error.subcode) == (551, 1545041)


async def test_the_24_hour_window(graph: GraphStandIn, client: GraphClient) -> None:
    graph.opened(PSID, datetime.now(UTC) - timedelta(hours=23, minutes=59))
    await client.call("POST", "/me/messages", body=send({"text": "in"}, "UPDATE"))
    graph.opened(PSID, datetime.now(UTC) - timedelta(hours=24, minutes=1))
    for kind in ("RESPONSE", "UPDATE"):
        error = await refusal(client, send({"text": "out"}, kind))
        assert (error.code, error.subcode) == (10, 2018278)
        assert error.message == "(#10) This message is sent outside of allowed window."
    graph.add_resident("6100000000000002")  # never wrote: no window at all
    error = await refusal(client, {**send({"text": "a"}), "recipient": {"id": "6100000000000002"}})
    assert error.subcode == 2018278
    assert [m.text for m in graph.inbox(PSID)] == ["in"]


async def test_human_agent_needs_the_permission_and_the_week(
    graph: GraphStandIn, client: GraphClient
) -> None:
    tagged = send({"text": "Atbilde"}, "MESSAGE_TAG", tag="HUMAN_AGENT")
    graph.opened(PSID, datetime.now(UTC) - timedelta(days=3))
    assert (await refusal(client, tagged)).code == 200
    graph.human_agent_permission = True
    await client.call("POST", "/me/messages", body=tagged)
    graph.opened(PSID, datetime.now(UTC) - timedelta(days=7, minutes=1))
    assert (await refusal(client, tagged)).subcode == 2018278
    [received] = graph.inbox(PSID)
    assert (received.messaging_type, received.tag) == ("MESSAGE_TAG", "HUMAN_AGENT")


async def test_a_rate_limit_tells_the_time_to_regain_access(
    graph: GraphStandIn, client: GraphClient
) -> None:
    graph.limit_rate(613, regain_minutes=2)
    graph.limit_rate(4)
    first = await refusal(client, send({"text": "a"}))
    assert (first.code, first.regain_seconds) == (613, 120.0)
    second = await refusal(client, send({"text": "a"}))
    assert (second.code, second.regain_seconds) == (4, None)
    await client.call("POST", "/me/messages", body=send({"text": "a"}))


async def test_an_expired_token_is_190_for_everything(
    graph: GraphStandIn, client: GraphClient
) -> None:
    graph.core.expire_token()
    for method, path in (("POST", "/me/messages"), ("GET", "/me")):
        with pytest.raises(GraphError) as caught:
            await client.call(method, path, body=send({"text": "a"}) if method == "POST" else None)
        assert caught.value.code == 190


def upload_form(
    data: bytes, content_type: str = "image/png", kind: str = "image"
) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field(
        "message", json.dumps({"attachment": {"type": kind, "payload": {"is_reusable": True}}})
    )
    form.add_field("filedata", data, filename="photo.png", content_type=content_type)
    return form


async def test_an_uploaded_image_is_sent_by_its_id(
    graph: GraphStandIn, client: GraphClient
) -> None:
    answer = await client.call("POST", "/me/message_attachments", form=upload_form(PNG))
    attachment_id = answer["attachment_id"]
    assert graph.uploads[attachment_id] == PNG
    image = {"attachment": {"type": "image", "payload": {"attachment_id": attachment_id}}}
    await client.call("POST", "/me/messages", body=send(image))
    assert graph.inbox(PSID)[0].attachment_id == attachment_id


async def test_an_image_by_url_can_be_saved(graph: GraphStandIn, client: GraphClient) -> None:
    body = {"message": {"attachment": {"type": "image", "payload": {"url": "https://x.lv/a.png"}}}}
    answer = await client.call("POST", "/me/message_attachments", body=body)
    assert answer["attachment_id"] in graph.uploads


@pytest.mark.parametrize(
    ("form", "subcode"),
    [
        (lambda: upload_form(b"%PDF-1.4", "application/pdf"), 2018074),
        (lambda: upload_form(b"not really", "image/png"), 2018074),
        (lambda: upload_form(b"\x89PNG\r\n\x1a\n" + b"\0" * (25 * 1024 * 1024)), 2018109),
    ],
)
async def test_uploads_meta_refuses(client: GraphClient, form: Any, subcode: int) -> None:
    with pytest.raises(GraphError) as caught:
        await client.call("POST", "/me/message_attachments", form=form())
    assert (caught.value.code, caught.value.subcode) == (100, subcode)
