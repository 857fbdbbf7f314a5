"""The bot on a Facebook page, end to end: Meta's signed deliveries POSTed to the webhook,
the answers through the strict Send API stand-in, the whole runtime in between, on
SQLite and PostgreSQL. The same dialogs as on every channel: onboarding, settings, my
data, a proposal with a photo, a poll, an announcement and a status update inside the
24-hour window and after it (as the catch-up), and the webhook's own rules: the
verification, the signature, batches, redeliveries, a worker killed between the 200
and the handling."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from PIL import Image
from tortoise import connections

from bot.channels import messenger_events
from bot.channels.messenger import WEBHOOK_PATH, MessengerChannel
from bot.core.config import MessengerConfig
from storage import deliveries, inbound, polls, proposals, residents
from storage.models import Ballot, ChannelIdentity, Delivery, InboundEvent, Proposal, Resident
from tests.bot.channels.messenger_helpers import VERIFY_TOKEN, Page, StartPage
from tests.bot.channels.telegram_helpers import eventually
from tests.bot.channels.test_telegram_polls import draft
from tests.bot.test_announcements import config_without_quiet_hours, onboarded
from tests.phrases import ALL_SET, MAIN_MENU, failed_apologies, tr
from tests.standins import messenger_webhook as meta
from tests.standins.graph_api import Sent
from tests.standins.graph_core import APP_SECRET

ANNA, JANIS = "2000000000000001", "2000000000000002"


def draft_of(category: str, text: str) -> proposals.Draft:
    return proposals.Draft(category=category, department="", text=text, language="en")


def en(message: str, /, **values: object) -> str:
    return tr("en", message, **values)


def no_failure(messages: list[Sent]) -> None:
    failed = failed_apologies()
    for message in messages:
        assert "Traceback" not in message.text and message.text not in failed, message.text


async def onboarded_and_wrote(page: Page, psid: str, ago: timedelta) -> None:
    """An English resident of Centrs whose last message was ``ago``: as the bot stamped
    it and as Meta's window counts it."""
    await onboarded(psid, "en", "centrs", channel="messenger")
    wrote = datetime.now(UTC) - ago
    await residents.note_inbound("messenger", psid, wrote)
    page.graph.opened(psid, wrote)


async def onboard(page: Page, psid: str) -> None:
    """Get Started, then English, a neighbourhood, a topic, the privacy notice: the menu."""
    resident = page.resident(psid)
    [question] = await resident.send(meta.get_started(psid))
    assert [title for title, _ in question.choices] == ["Latviešu", "English", "Русский"]
    await resident.taps("English")
    await resident.taps("Centre")
    # No editing on Messenger: each tap on a topic sends the question anew, ticked.
    [ticked] = await resident.taps("Roads, transport")
    assert ("✓ Roads, transport") in [title for title, _ in ticked.choices]
    await resident.taps("Done")
    [menu] = await resident.taps("I agree")
    assert menu.text == f"{en(ALL_SET)}\n\n{en(MAIN_MENU)}"
    no_failure(page.graph.inbox(psid))


@pytest.mark.storage
async def test_a_resident_onboards_through_get_started(start_page: StartPage) -> None:
    page = await start_page()
    await onboard(page, ANNA)
    # Every answer went as a RESPONSE, quick replies or postback buttons within the limits.
    sent = page.graph.inbox(ANNA)
    assert {message.messaging_type for message in sent} == {"RESPONSE"}
    resident = await Resident.get(identities__external_id=ANNA)
    assert resident.language == "en" and resident.onboarded_at is not None
    # The window counts from Meta's own timestamp of the last message.
    identity = await ChannelIdentity.get(channel="messenger", external_id=ANNA)
    assert identity.last_inbound_at is not None
    assert datetime.now(UTC) - identity.last_inbound_at < timedelta(minutes=1)
    # Handled events keep only their key: no message text stays in the inbox table.
    assert set(await InboundEvent.all().values_list("body", flat=True)) == {""}


@pytest.mark.storage
async def test_settings_my_data_and_the_persistent_menus_commands(start_page: StartPage) -> None:
    page = await start_page()
    await onboard(page, ANNA)
    anna = page.resident(ANNA)
    # The persistent menu's items are postbacks of commands.
    shown = await anna.send(meta.postback(ANNA, "My data", "/mydata"))
    assert any("Messenger" in message.text for message in shown)
    asked = await anna.says("/language")
    assert "Latviešu" in [title for title, _ in asked[-1].choices]
    await anna.taps("Latviešu")
    resident = await Resident.get(identities__external_id=ANNA)
    assert resident.language == "lv"
    no_failure(page.graph.inbox(ANNA))


@pytest.mark.storage
async def test_stickers_reactions_edits_echoes_and_receipts_are_taken_as_a_person_would(
    start_page: StartPage,
) -> None:
    page = await start_page()
    await onboard(page, ANNA)
    anna = page.resident(ANNA)
    # A sticker or a voice note is not something a dialog reads: a polite word and the menu.
    for item in (
        meta.legacy_sticker(ANNA),
        meta.sticker(ANNA),
        meta.attachment(ANNA, "audio", {"url": "https://cdn.example/a.mp4"}),
    ):
        answer = await anna.send(item)
        assert en(MAIN_MENU) in answer[-1].text
    before = len(page.graph.inbox(ANNA))
    # A reaction, an edit, the page's own echo, read and delivery receipts: no answer.
    await page.meta.deliver(
        meta.reaction(ANNA, "m_x"),
        meta.message_edit(ANNA, "m_x", "changed"),
        meta.echo(ANNA, "hello"),
        meta.read(ANNA),
        meta.delivered(ANNA),
    )
    await asyncio.sleep(0.3)
    assert len(page.graph.inbox(ANNA)) == before
    no_failure(page.graph.inbox(ANNA))


@pytest.mark.storage
async def test_the_verification_answers_only_the_right_token(start_page: StartPage) -> None:
    page = await start_page()
    assert await page.meta.verify("subscribe", VERIFY_TOKEN, "1158201444") == (200, "1158201444")
    assert (await page.meta.verify("subscribe", "wrong-token-123", "1"))[0] == 403
    assert (await page.meta.verify("unsubscribe", VERIFY_TOKEN, "1"))[0] == 403


@pytest.mark.storage
async def test_a_forged_missing_or_malformed_signature_touches_nothing(
    start_page: StartPage,
) -> None:
    page = await start_page()
    body = meta.delivery(meta.text(ANNA, "Hello"))
    raw = meta.encode(body)
    forged = meta.sign(raw, "f" * 32)
    for signature in (forged, None, "sha256=zz", "sha1=" + "0" * 40, forged.upper()):
        status, _ = await page.meta.post(body, signature=signature)
        assert status == 403, signature
    # Signed over other bytes than those sent (the JSON re-serialised): refused too.
    status, _ = await page.meta.post(raw + b" ", signature=meta.sign(raw))
    assert status == 403
    assert await InboundEvent.all().count() == 0
    assert await Resident.all().count() == 0
    assert page.graph.inbox(ANNA) == []


@pytest.mark.storage
async def test_malformed_bodies_and_unknown_events_do_no_harm(start_page: StartPage) -> None:
    page = await start_page()
    for raw in (b"not json", b"[1, 2]", b'{"object": "instagram", "entry": []}', b"{" * 5000):
        status, text = await page.meta.post(raw)
        assert status == 400 and "not a Messenger webhook delivery" in text
    odd = {
        "object": "page",
        "entry": [
            {"id": "1", "time": 1},  # neither messaging nor standby
            {
                "id": "1",
                "time": 1,
                "messaging": [{"sender": {"id": ANNA}, "timestamp": 1, "game_play": {}}],
            },
            {
                "id": "1",
                "time": 1,
                "messaging": [
                    {"sender": {"user_ref": "abc"}, "message": {"mid": "m", "text": "x"}}
                ],
            },
            {
                "id": "1",
                "time": 1,
                "messaging": ["not an object", {"sender": "nope", "message": 5}],
            },
        ],
    }
    status, _ = await page.meta.post(odd)
    assert status == 200
    assert await InboundEvent.all().count() == 0
    assert await Resident.all().count() == 0
    health = await _get(page, "/healthz")
    assert health[0] == 200


@pytest.mark.storage
async def test_a_batch_is_handled_whole_and_in_order_and_a_redelivery_once(
    start_page: StartPage,
) -> None:
    page = await start_page()
    anna, janis = page.resident(ANNA), page.resident(JANIS)
    page.graph.opened(ANNA)
    page.graph.opened(JANIS)
    first = meta.get_started(ANNA)
    second = meta.quick_reply(ANNA, "English", "onb:language:en")
    body = meta.delivery(entries=[[first, meta.get_started(JANIS)], [second, meta.read(ANNA)]])
    status, _ = await page.meta.post(body)
    assert status == 200
    [to_janis] = await janis.received(1)
    assert "Latviešu" in [title for title, _ in to_janis.choices]
    # Anna's two events in order: the language question, then (English) the neighbourhood.
    question, neighbourhood = await anna.received(2)
    assert "English" in [title for title, _ in question.choices]
    assert "Centre" in [title for title, _ in neighbourhood.choices]
    # Meta delivers the same body again (our 200 was lost on the way): no second effect.
    status, _ = await page.meta.post(body)
    assert status == 200
    await asyncio.sleep(0.3)
    assert len(page.graph.inbox(ANNA)) == 2 and len(page.graph.inbox(JANIS)) == 1
    assert await InboundEvent.all().count() == 3


@pytest.mark.storage
async def test_events_left_by_a_worker_killed_after_the_200_are_handled_on_restart(
    start_page: StartPage,
) -> None:
    page = await start_page()
    # What a worker that died between the 200 and the handling leaves: its stored events
    # (written here as its webhook wrote them, then the worker is gone).
    item = meta.get_started(ANNA)
    event = messenger_events.events_of(meta.delivery(item))
    assert event is not None
    [(key, stored)] = [(e.key, json.dumps({"key": e.key, "item": e.item})) for e in event]
    await inbound.accept("messenger", page.runtime.worker_id, [(key, stored)])
    await page.runtime.stop()
    page.graph.opened(ANNA)
    page = await start_page()
    [question] = await page.resident(ANNA).received(1)
    assert "English" in [title for title, _ in question.choices]
    await eventually(lambda: InboundEvent.filter(handled_at__isnull=False).count(), what="handled")
    # Meta retries the same event later: stored once, handled once.
    await page.meta.deliver(item)
    await asyncio.sleep(0.3)
    assert len(page.graph.inbox(ANNA)) == 1


@pytest.fixture
async def cdn() -> AsyncIterator[str]:
    """Meta's content servers: where an attachment's URL points."""
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), "green").save(buffer, "JPEG")
    jpeg = buffer.getvalue()

    async def photo(request: web.Request) -> web.Response:
        return web.Response(body=jpeg, content_type="image/jpeg")

    async def chunked(request: web.Request) -> web.StreamResponse:
        """The same photo with no Content-Length: its size shows only while it is read."""
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(jpeg), 1000):
            await response.write(jpeg[start : start + 1000])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/photo.jpg", photo)
    app.router.add_get("/chunked.jpg", chunked)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.storage
async def test_a_photo_is_read_only_within_the_cap_and_only_over_http(
    start_page: StartPage, cdn: str
) -> None:
    page = await start_page()
    channel = page.runtime.messenger
    assert channel is not None
    whole = await channel.fetch(f"{cdn}/photo.jpg", 10_000_000)
    assert whole is not None and whole[:2] == b"\xff\xd8"
    assert await channel.fetch(f"{cdn}/chunked.jpg", 10_000_000) == whole
    assert await channel.fetch(f"{cdn}/photo.jpg", 1000) is None  # declared too large
    assert await channel.fetch(f"{cdn}/chunked.jpg", 1000) is None  # found too large
    assert await channel.fetch(f"{cdn}/gone.jpg", 10_000_000) is None
    assert await channel.fetch("file:///etc/passwd", 10_000_000) is None


@pytest.mark.storage
async def test_a_proposal_with_a_photo(
    start_page: StartPage, cdn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the photos go under data/photos here
    page = await start_page()
    await onboard(page, ANNA)
    anna = page.resident(ANNA)
    await anna.says("/propose")
    await anna.taps("Roads, pavements")
    [card] = await anna.says("Graffiti on the new bridge")
    assert card.text.startswith(en("Your proposal — check it, then press Submit."))
    await anna.taps("Add photos")
    await anna.send(meta.image(ANNA, f"{cdn}/photo.jpg"))
    [card] = await anna.taps("Done")
    assert en("Photos: {n} of {most}", n=1, most=3) in card.text
    [thanks] = await anna.taps("Submit")
    assert "P-" in thanks.text
    row = await Proposal.get()
    assert row.text == "Graffiti on the new bridge"
    assert len(await row.photos.all()) == 1  # type: ignore[attr-defined]
    no_failure(page.graph.inbox(ANNA))


@pytest.mark.storage
async def test_a_poll_invitation_inside_the_window_and_a_tap(
    start_page: StartPage, tmp_path: Path
) -> None:
    page = await start_page(config_without_quiet_hours(tmp_path))
    await onboarded_and_wrote(page, ANNA, timedelta(hours=2))
    anna = page.resident(ANNA)
    poll = await polls.create(draft(), author="cli")
    await polls.open_due(datetime.now(UTC))
    [invitation] = await anna.received(1)
    assert invitation.messaging_type == "UPDATE"
    assert invitation.text.startswith("Where should the benches go?")
    assert [title for title, _ in invitation.choices] == ["In the park", "At school"]
    # The button stays on the message (a template), so the tap may come hours later.
    assert invitation.buttons
    [answer] = await anna.taps("At school")
    assert en("Your answer: {answer}", answer="At school") in answer.text
    assert await Ballot.filter(poll_id=poll.id).count() == 1
    no_failure(page.graph.inbox(ANNA))


@pytest.mark.storage
async def test_outside_the_window_pushes_wait_and_come_as_one_catch_up(
    start_page: StartPage, tmp_path: Path
) -> None:
    page = await start_page(config_without_quiet_hours(tmp_path))
    await onboarded_and_wrote(page, ANNA, timedelta(days=3))
    anna = page.resident(ANNA)
    announcement = await deliveries.create_announcement(
        author="cli",
        texts={"lv": "Ūdens atslēgts", "en": "Water off on Monday"},
        audience={"kind": "all"},
        send_at=datetime.now(UTC),
    )
    await deliveries.release(announcement, datetime.now(UTC))
    await eventually(lambda: Delivery.filter(state="waiting").count(), what="the push waiting")
    counts = await deliveries.counts(deliveries.ANNOUNCEMENT, announcement.id)
    assert counts["waiting:messenger"] == 1
    assert page.graph.inbox(ANNA) == []  # nothing sent outside the window: Meta would refuse
    # She writes: the answer, and what waited for her right after it.
    messages = await anna.says("/menu", expect=2)
    assert any("Water off on Monday" in message.text for message in messages)
    assert await Delivery.filter(state="sent").count() == 1
    no_failure(messages)


@pytest.mark.storage
async def test_a_staff_answer_uses_human_agent_within_the_week_when_the_page_may(
    start_page: StartPage, tmp_path: Path
) -> None:
    page = await start_page(with_human_agent(config_without_quiet_hours(tmp_path)))
    page.graph.human_agent_permission = True
    await onboarded_and_wrote(page, ANNA, timedelta(days=2))
    row = await _proposal_of(ANNA)
    await proposals.change_status(
        row.id, "under_review", actor="cli", explanation="An inspector goes there on Monday."
    )
    [update] = await page.resident(ANNA).received(1)
    assert (update.messaging_type, update.tag) == ("MESSAGE_TAG", "HUMAN_AGENT")
    assert "An inspector goes there on Monday." in update.text


@pytest.mark.storage
async def test_a_refused_token_stops_messenger_and_healthz_says_why(
    start_page: StartPage, tmp_path: Path
) -> None:
    page = await start_page(config_without_quiet_hours(tmp_path))
    await onboarded_and_wrote(page, ANNA, timedelta(0))
    page.graph.core.expire_token()
    announcement = await deliveries.create_announcement(
        author="cli",
        texts={"lv": "Sveiki", "en": "Hello"},
        audience={"kind": "all"},
        send_at=datetime.now(UTC),
    )
    await deliveries.release(announcement, datetime.now(UTC))

    async def failing() -> bool:
        status, _ = await _get(page, "/healthz")
        return status == 503

    await eventually(failing, what="/healthz 503")
    _, text = await _get(page, "/healthz")
    assert "messenger" in text and "190" in text and page.graph.token not in text
    # The push waits in the queue, not failed, not retried in a storm.
    await asyncio.sleep(0.5)
    row = await Delivery.get()
    assert row.state == "queued" and row.attempts == 0
    calls = [call for call in page.graph.core.calls if call.path == "/me/messages"]
    assert len(calls) <= 1


def with_human_agent(config: str) -> str:
    """The configuration with ``messenger.human_agent`` on (the page has the permission)."""
    path = Path(config)
    text = path.read_text(encoding="utf-8")
    assert "human_agent = false" in text
    path.write_text(text.replace("human_agent = false", "human_agent = true"), encoding="utf-8")
    return config


async def _proposal_of(psid: str) -> Proposal:
    resident = await Resident.get(identities__external_id=psid)
    return await proposals.submit(resident, draft_of("roads", "A pothole on Brīvības iela"))


async def _get(page: Page, path: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{page.runtime.config.http_port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


@pytest.mark.storage
async def test_a_status_update_inside_the_window_goes_and_after_it_waits_for_her(
    start_page: StartPage, tmp_path: Path
) -> None:
    page = await start_page(config_without_quiet_hours(tmp_path))
    await onboarded_and_wrote(page, ANNA, timedelta(hours=3))
    anna = page.resident(ANNA)
    row = await _proposal_of(ANNA)
    await proposals.change_status(row.id, "under_review", actor="cli")
    [update] = await anna.received(1)
    assert (update.messaging_type, update.tag) == ("UPDATE", "")
    assert row.reference in update.text

    # Two days of silence later: the next change waits (no HUMAN_AGENT on this page).
    two_days = datetime.now(UTC) - timedelta(days=2)
    await ChannelIdentity.filter(external_id=ANNA).update(last_inbound_at=two_days)
    page.graph.opened(ANNA, two_days)
    await proposals.change_status(
        row.id, "planned", actor="cli", explanation="Repaired in the spring works."
    )
    await eventually(lambda: Delivery.filter(state="waiting").count(), what="the update waits")
    assert len(page.graph.inbox(ANNA)) == 1
    messages = await anna.says("/menu", expect=2)
    assert any("Repaired in the spring works." in message.text for message in messages)
    no_failure(messages)


@pytest.mark.storage
async def test_a_delivery_that_cannot_be_stored_is_not_answered_200(
    start_page: StartPage,
) -> None:
    page = await start_page()
    client = connections.get("default")
    await client.execute_script('ALTER TABLE "inbound_event" RENAME TO "inbound_event_away"')
    try:
        status, _ = await page.meta.post(meta.delivery(meta.get_started(ANNA)))
        assert status == 503, "Meta must deliver it again"
    finally:
        await client.execute_script('ALTER TABLE "inbound_event_away" RENAME TO "inbound_event"')
    assert await Resident.all().count() == 0


async def test_a_delivery_before_the_channel_has_started_is_left_for_meta_to_repeat() -> None:
    """Between the HTTP server's start and the channel's, nothing could answer the event:
    503, so Meta delivers it again, and nothing is stored meanwhile."""

    stored: list[object] = []

    class NoInbox:
        async def accept(self, events: object) -> list[tuple[int, str]]:
            stored.append(events)
            return []

        async def handled(self, event_id: int) -> None: ...

        async def unhandled(self, *, own: bool) -> list[tuple[int, str, int]]:
            return []

    async def feed(incoming: object) -> object:
        raise AssertionError("nothing may be handled")

    config = MessengerConfig(
        page_token="EAAGstandin0000pagetoken0000000000000000",
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
    )
    channel = MessengerChannel(config, feed, NoInbox())  # type: ignore[arg-type]
    app = web.Application()
    channel.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        hook = meta.MetaWebhook(f"http://127.0.0.1:{port}{WEBHOOK_PATH}")
        status, _ = await hook.post(meta.delivery(meta.text(ANNA, "Sveiki")))
        assert status == 503
        assert stored == []
    finally:
        await runner.cleanup()
