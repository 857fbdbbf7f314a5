"""The Profile API stand-in refuses what Meta refuses, in Meta's error shape, over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot.channels.messenger_graph import GraphClient, GraphError
from tests.standins.graph_core import PAGE_ID, PAGE_TOKEN, GraphCore
from tests.standins.graph_profile import APP_ID, GraphProfile


@pytest_asyncio.fixture
async def page() -> AsyncIterator[GraphProfile]:
    core = await GraphCore().start()
    try:
        yield GraphProfile(core)
    finally:
        await core.stop()


@pytest_asyncio.fixture
async def client(page: GraphProfile) -> AsyncIterator[GraphClient]:
    async with aiohttp.ClientSession() as session:
        yield GraphClient(session, page.core.url, "v25.0", PAGE_TOKEN)


def menu(*titles: str, payload: str = "/help", locale: str = "default") -> dict[str, Any]:
    actions = [{"type": "postback", "title": t, "payload": payload} for t in titles]
    return {"locale": locale, "composer_input_disabled": False, "call_to_actions": actions}


GOOD = {
    "get_started": {"payload": "/start"},
    "greeting": [{"locale": "default", "text": "Sveiki!"}, {"locale": "en_US", "text": "Hi!"}],
    "persistent_menu": [menu("Palīdzība"), menu("Help", locale="en_US")],
}


async def refused(client: GraphClient, body: Any) -> GraphError:
    with pytest.raises(GraphError) as caught:
        await client.call("POST", "/me/messenger_profile", body=body)
    return caught.value


async def test_a_profile_within_the_limits_is_set_and_read_back(
    page: GraphProfile, client: GraphClient
) -> None:
    assert await client.call("POST", "/me/messenger_profile", body=GOOD) == {"result": "success"}
    fields = {"fields": "get_started,greeting,persistent_menu"}
    assert await client.call("GET", "/me/messenger_profile", params=fields) == {"data": [GOOD]}
    only = await client.call("GET", "/me/messenger_profile", params={"fields": "greeting"})
    assert only == {"data": [{"greeting": GOOD["greeting"]}]}


async def test_nothing_set_reads_as_empty_data(client: GraphClient) -> None:
    answer = await client.call("GET", "/me/messenger_profile", params={"fields": "get_started"})
    assert answer == {"data": []}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"greeting": [{"locale": "default", "text": "x" * 161}]}, "at most 160"),
        ({"greeting": [{"locale": "en_US", "text": "Hi"}]}, "default locale"),
        ({"persistent_menu": [menu("Help", locale="en_US")]}, "default locale"),
        ({"persistent_menu": [menu(*["Item"] * 21)]}, "too many elements"),
        ({"persistent_menu": [menu("x" * 31)]}, "at most 30"),
        ({"persistent_menu": [menu("Help", payload="p" * 1001)]}, "at most 1000"),
        ({"get_started": {"payload": ""}}, "get_started[payload]"),
        ({"ice_cream": True}, "ice_cream"),
    ],
    ids=[
        "greeting-161",
        "greeting-no-default",
        "menu-no-default",
        "menu-21-items",
        "title-31",
        "payload-1001",
        "empty-get-started",
        "unknown-field",
    ],
)
async def test_what_meta_refuses_is_refused_with_100(
    page: GraphProfile, client: GraphClient, change: dict[str, Any], says: str
) -> None:
    error = await refused(client, {**GOOD, **change})
    assert (error.status, error.code) == (400, 100)
    assert says in error.message
    assert page.profile == {}  # nothing of a refused call is kept


async def test_the_limits_themselves_are_allowed(page: GraphProfile, client: GraphClient) -> None:
    body = {
        **GOOD,
        "greeting": [{"locale": "default", "text": "ā" * 160}],
        "persistent_menu": [menu(*["ž" * 30] * 20, payload="p" * 1000)],
    }
    await client.call("POST", "/me/messenger_profile", body=body)
    assert page.profile["greeting"][0]["text"] == "ā" * 160


async def test_a_persistent_menu_needs_get_started(page: GraphProfile, client: GraphClient) -> None:
    error = await refused(client, {"persistent_menu": GOOD["persistent_menu"]})
    assert error.code == 100 and "Get Started" in error.message
    await client.call("POST", "/me/messenger_profile", body={"get_started": {"payload": "/s"}})
    await client.call(
        "POST", "/me/messenger_profile", body={"persistent_menu": GOOD["persistent_menu"]}
    )
    assert page.profile["persistent_menu"] == GOOD["persistent_menu"]


async def test_an_unknown_field_asked_for_is_refused(client: GraphClient) -> None:
    with pytest.raises(GraphError) as caught:
        await client.call("GET", "/me/messenger_profile", params={"fields": "greeting,colour"})
    assert caught.value.code == 100 and "colour" in caught.value.message


async def test_the_profile_api_allows_ten_calls_in_ten_minutes_when_asked(
    page: GraphProfile, client: GraphClient
) -> None:
    page.rate_limit = True
    for _ in range(10):
        await client.call("GET", "/me/messenger_profile", params={"fields": "greeting"})
    error = await refused(client, GOOD)
    assert error.code == 613
    assert page.profile == {}


async def test_me_names_the_page(client: GraphClient) -> None:
    assert await client.call("GET", "/me") == {"name": "Demo novads", "id": PAGE_ID}


async def test_subscribed_apps_reads_what_was_subscribed(
    page: GraphProfile, client: GraphClient
) -> None:
    assert await client.call("GET", f"/{PAGE_ID}/subscribed_apps") == {"data": []}
    await client.call(
        "POST",
        f"/{PAGE_ID}/subscribed_apps",
        params={"subscribed_fields": "messages,messaging_postbacks"},
    )
    [app] = (await client.call("GET", f"/{PAGE_ID}/subscribed_apps"))["data"]
    assert (app["id"], app["subscribed_fields"]) == (APP_ID, ["messages", "messaging_postbacks"])


async def test_subscribing_to_an_unknown_field_or_page_is_refused(client: GraphClient) -> None:
    with pytest.raises(GraphError) as caught:
        await client.call(
            "POST", f"/{PAGE_ID}/subscribed_apps", params={"subscribed_fields": "messages,gossip"}
        )
    assert caught.value.code == 100 and "gossip" in caught.value.message
    with pytest.raises(GraphError) as caught:
        await client.call("GET", "/999/subscribed_apps")
    assert (caught.value.code, caught.value.subcode) == (100, 33)


async def test_a_wrong_token_gets_190(page: GraphProfile, client: GraphClient) -> None:
    page.core.expire_token()
    with pytest.raises(GraphError) as caught:
        await client.call("GET", "/me")
    assert (caught.value.status, caught.value.code) == (401, 190)
