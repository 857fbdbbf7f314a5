"""Every dialog under the strictest channel we support, and on the channels we have.

The strictest (``STRICTEST``: Messenger's 13 quick replies of 20 characters, no editing,
Telegram's 64 bytes of payload) is set as the channel's capabilities on the dispatcher,
and the conversation is driven through ``Chat`` as on any channel: every step of every
dialog, in Latvian, English and Russian, with the demo municipality and with one of 31
neighbourhoods and 14 topics. Each answer is checked as it comes: no label over 20
characters (a channel would cut it), no more than 13 buttons, no payload over 64 bytes,
no edit in place; a message whose buttons are paged is paged through to the end, and
what its pages offer is compared with the same step shown where every button fits.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.channels.telegram import CAPABILITIES as TELEGRAM
from bot.channels.webchat import CAPABILITIES as WEBCHAT
from bot.core.config import Config, LimitsConfig, Municipality, from_mapping
from bot.core.i18n import LANGUAGES, translator
from bot.core.messages import (
    STRICTEST,
    Button,
    Capabilities,
    Incoming,
    Kind,
    RenderRequest,
    Reply,
)
from dialogs.announcement_list import LIST
from dialogs.engine import EXPIRED, NONCE, paginate
from dialogs.pushes import Pushes
from dialogs.registry import REGISTRY
from handlers.dispatcher import Dispatcher
from storage import catalog, deliveries, feedback, proposals, residents, staff
from storage.catalog import Entry
from storage.models import (
    Announcement,
    ChannelIdentity,
    Delivery,
    Poll,
    Proposal,
    ProposalPhoto,
    Resident,
)
from storage.proposals import Draft
from storage.sessions import open_session
from tests.chat import Chat
from tests.phrases import (
    DISCARDED,
    MORE,
    NEIGHBOURHOOD_QUESTION,
    PREVIOUS,
    SEND_FOR_APPROVAL,
    SETTINGS_TOPICS,
    tr,
)

# Messenger takes photos, so the composer's image step is shown under the strict limits too.
STRICT = replace(STRICTEST, takes_photos=True)
CHANNELS = {"strict": STRICTEST, "webchat": WEBCHAT, "telegram": TELEGRAM}
# A walk sends a message or two a second more than a person would.
UNTHROTTLED = LimitsConfig(throttle_messages=10_000)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00street\xff\xd9"

# Riga's neighbourhoods: 31 of them, one too long for a button with its short form.
HOODS = [
    "Avoti", "Āgenskalns", "Beberbeķi", "Bieriņi", "Bišumuiža", "Bolderāja", "Brasa",
    "Brekši", "Bukulti", "Buļļi", "Čiekurkalns", "Daugavgrīva", "Dreiliņi", "Dārzciems",
    "Dzirciems", "Grīziņkalns", "Iļģuciems", "Imanta", "Jugla", "Katlakalns", "Ķengarags",
    "Ķīpsala", "Mangaļsala", "Maskavas forštate", "Mežaparks", "Mežciems", "Pļavnieki",
    "Purvciems", "Sarkandaugava", "Teika", "Pētersala-Andrejsala",
]  # fmt: skip
TOPICS = [
    "Ielas un ceļi", "Sabiedriskais transports", "Parki", "Skolas", "Bērnudārzi", "Kultūra",
    "Sports", "Sociālā palīdzība", "Veselība", "Drošība", "Atkritumi", "Ūdens un siltums",
    "Mājokļi", "Uzņēmējdarbība",
]  # fmt: skip
SHORT = {"Pētersala-Andrejsala": "Pētersala", "Sabiedriskais transports": "Transports"}


def _ident(name: str) -> str:
    plain = name.lower().translate(str.maketrans("āčēģīķļņšūž", "acegiklnsuz"))
    return "".join(c if c.isalnum() else "-" for c in plain)[:24]


def _table(names: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in names:
        row: dict[str, Any] = {"id": _ident(name), "name": {"lv": name}}
        if name in SHORT:
            row["short"] = {"lv": SHORT[name]}
        rows.append(row)
    return rows


def big_municipality() -> Municipality:
    """Read through the configuration's own parsing, so its checks apply."""
    data = {"municipality": {"neighbourhoods": _table(HOODS), "topics": _table(TOPICS)}}
    return from_mapping(data).municipality


async def with_municipality(config: Config, m: Municipality) -> Config:
    await catalog.sync(
        [Entry(n.id, n.names) for n in m.neighbourhoods], [Entry(t.id, t.names) for t in m.topics]
    )
    return replace(config, municipality=m)


@dataclass
class PhotoSource:
    async def fetch(self, file_id: str, max_bytes: int) -> bytes | None:
        return JPEG


_events = itertools.count(1)


def _parts(payload: str) -> tuple[str, str]:
    """(state, value) of a step button's payload, the instance's nonce left out."""
    tagged, _, value = payload.rpartition(":")
    return tagged.partition("~")[0], value


@dataclass
class Walker:
    """A resident (or staff member) on a strict channel: every answer checked on arrival."""

    chat: Chat
    caps: Capabilities
    states: set[str] = field(default_factory=set)  # every dialog step shown
    payloads: set[str] = field(default_factory=set)  # every payload offered
    live: Reply | None = None  # the message whose buttons work now
    paged: set[str] = field(default_factory=set)  # the steps whose buttons were paged

    @property
    def language(self) -> str:
        return self.chat.locale

    def said(self, message: str) -> str:
        return tr(self.language, message)

    async def _then(self, replies: list[Reply], *, paging: bool = False) -> None:
        for reply in replies:
            buttons = reply.all_buttons()
            if not self.caps.can_edit:
                assert not reply.replace, f"an edit where the channel cannot: {reply.text!r}"
            assert len(buttons) <= self.caps.buttons_per_message, [b.label for b in buttons]
            labels = [b.label for b in buttons]
            assert len(set(labels)) == len(labels), f"two buttons look alike: {labels}"
            for button in buttons:
                assert 0 < len(button.label) <= self.caps.label_length, button
                assert len(button.payload.encode()) <= self.caps.payload_bytes, button
                self.payloads.add(button.payload)
            if buttons:
                self.live = reply
        state, _data = await self.chat.stored()
        if state:
            self.states.add(state)
        if not paging and self._nav(MORE) and not self._nav(PREVIOUS):
            await self._page_through()

    def _nav(self, message: str) -> Button | None:
        label = self.said(message)
        buttons = self.live.all_buttons() if self.live else []
        return next((b for b in buttons if b.label == label), None)

    async def _page_through(self) -> None:
        """Every page of the message just shown; then what it offers, compared with the
        same message where every button fits on one."""
        assert self.live is not None
        offered = list(self.live.all_buttons())
        for _ in range(100):
            more = self._nav(MORE)
            if more is None:
                break
            await self._then(await self.chat.press_payload(more.payload), paging=True)
            offered += self.live.all_buttons()
        else:
            raise AssertionError("no last page in 100")
        navigation = {self.said(MORE), self.said(PREVIOUS)}
        choices = [b for b in offered if b.label not in navigation]
        whole = await self._on_one_page(choices[0].payload)
        assert {_parts(b.payload) for b in choices} == {_parts(b.payload) for b in whole}
        self.paged.add(_parts(choices[0].payload)[0])

    async def _on_one_page(self, payload: str) -> list[Button]:
        """The message the buttons came from, shown with room for every button: the step
        shown again (as when a chat is opened), or the staff list refreshed."""
        dispatcher = self.chat.dispatcher
        channel = self.chat.channel
        dispatcher.capabilities[channel] = replace(self.caps, buttons_per_message=10_000)
        try:
            if payload.startswith(LIST):
                kind, fields = Kind.BUTTON, {"payload": LIST}
            elif payload.startswith("pr:b:"):  # the neighbourhoods to browse proposals of
                kind, fields = Kind.BUTTON, {"payload": "pr:n"}
            elif payload.startswith("pl:"):  # a resident's list of polls
                kind, fields = Kind.BUTTON, {"payload": "menu:polls"}
            else:
                kind, fields = Kind.OPEN, {}
            incoming = Incoming(channel, self.chat.user_id, f"w{next(_events)}", kind, **fields)
            outcome = await dispatcher.feed(incoming)
        finally:
            dispatcher.capabilities[channel] = self.caps
        return outcome.replies[-1].all_buttons()

    # --- what the person does ---------------------------------------------------------
    async def command(self, name: str) -> None:
        await self._then(await self.chat.command(name))

    async def text(self, text: str) -> None:
        await self._then(await self.chat.text(text))

    async def photo(self) -> None:
        await self._then(await self.chat.send(Kind.PHOTO, photo_id="photo-1"))

    async def choose(self, state: str, value: str) -> None:
        """Press the live message's button for ``value`` of step ``state``, paging to it."""
        await self._press(lambda b: _parts(b.payload) == (state, value), f"{state}:{value}")

    async def press(self, payload: str) -> None:
        """Press the live message's button with this (stateless) payload, paging to it."""
        await self._press(lambda b: b.payload == payload, payload)

    async def _press(self, wanted: Callable[[Button], bool], what: str) -> None:
        for direction in (MORE, PREVIOUS):
            for _ in range(100):
                assert self.live is not None, f"no buttons on screen for {what}"
                found = next((b for b in self.live.all_buttons() if wanted(b)), None)
                if found is not None:
                    await self._then(await self.chat.press_payload(found.payload))
                    return
                nav = self._nav(direction)
                if nav is None:
                    break
                await self._then(await self.chat.press_payload(nav.payload), paging=True)
        raise AssertionError(f"{what} is on no page of {self.live}")


async def resident_walk(walker: Walker, m: Municipality) -> None:
    hoods, topics = [n.id for n in m.neighbourhoods], [t.id for t in m.topics]
    await walker.command("start")
    await walker.choose("onb:language", walker.language)
    await walker.choose("onb:neighbourhood", hoods[-1])
    await walker.choose("onb:topics", topics[-1])
    await walker.choose("onb:topics", topics[0])
    await walker.choose("onb:topics", "_done")
    await walker.choose("onb:privacy", "_yes")
    await walker.press("menu:mute")
    await walker.press("menu:unmute")
    await walker.command("language")
    await walker.press(f"lang:{walker.language}")
    await walker.press("menu:settings")
    await walker.choose("set:home", "language")
    await walker.choose("set:language", "_back")
    await walker.choose("set:home", "neighbourhood")
    await walker.choose("set:neighbourhood", hoods[len(hoods) // 2])
    await walker.choose("set:home", "neighbourhood")
    await walker.choose("set:neighbourhood", "_skip")
    await walker.choose("set:home", "topics")
    await walker.choose("set:topics", topics[-1])
    await walker.choose("set:topics", "_done")
    await walker.choose("set:home", "_back")
    await walker.press("menu:data")
    await walker.choose("data:overview", "delete")
    await walker.choose("data:confirm", "_no")
    await walker.press("menu:help")
    await proposal_walk(walker, m)


async def proposal_walk(walker: Walker, m: Municipality) -> None:
    """Submit (every step of the card), the similar offer, My proposals, browsing."""
    hoods = [n.id for n in m.neighbourhoods]
    await walker.press("menu:propose")
    await walker.choose("prop:category", "_cancel")
    await walker.command("propose")
    await walker.choose("prop:category", "roads")
    await walker.text("Bedre pie skolas vārtiem")
    await walker.choose("prop:card", "text")
    await walker.choose("prop:text", "_back")
    await walker.choose("prop:card", "place")
    await walker.text("Skolas iela 1")
    await walker.choose("prop:card", "place")
    await walker.choose("prop:place", "remove")
    if walker.caps.takes_photos:
        await walker.choose("prop:card", "photos")
        await walker.photo()
        await walker.choose("prop:photo", "_done")
    await walker.choose("prop:card", "hood")
    await walker.choose("prop:hood", hoods[0])
    await walker.choose("prop:card", "submit")
    first = await Proposal.get(text="Bedre pie skolas vārtiem")
    # The same again: the first is offered.
    await walker.press("menu:propose")
    await walker.choose("prop:category", "roads")
    await walker.text("Bedre pie skolas vārtiem")
    await walker.choose("prop:card", "hood")
    await walker.choose("prop:hood", hoods[0])
    await walker.choose("prop:card", "submit")
    await walker.choose("prop:same", "_back")
    await walker.choose("prop:card", "submit")
    await walker.choose("prop:same", str(first.id))
    await walker.press("menu:propose")
    await walker.choose("prop:category", "idea")
    await walker.text("Melnraksts")
    await walker.choose("prop:card", "_cancel")
    await walker.press("menu:myproposals")
    await walker.press(f"pr:v:{first.id}")
    await walker.press(f"pr:w:{first.id}")
    await walker.press(f"pr:v:{first.id}")
    await walker.press("pr:m:0")
    await walker.press("menu:main")
    await walker.press("menu:proposals")
    await walker.press("pr:n")
    await walker.press(f"pr:b:{hoods[0]}:0")
    await walker.press(f"pr:v:{first.id}")
    await walker.press("menu:main")
    await walker.press("menu:proposals")
    await walker.press("pr:q")
    await walker.text("P-2000-9999")
    await walker.press("menu:proposals")
    await walker.press("pr:q")
    await walker.choose("pfind:ref", "_back")


async def feedback_walk(walker: Walker, config: Config) -> None:
    """The feedback loop: its buttons come with pushes, checked here as the worker renders
    them, then pressed, through the reply dialog (added for issue 13's feedback part)."""
    chat = walker.chat
    identity = await ChannelIdentity.get(channel=chat.channel, external_id=chat.user_id)
    author = await Resident.get(id=identity.resident_id)  # type: ignore[attr-defined]
    draft = Draft("roads", "municipality", "Dziļa bedre pie skolas", walker.language)
    proposal = await proposals.submit(author, draft)
    render = Pushes(config.municipality.zone, config=config)
    await proposals.change_status(proposal.id, "planned", actor="cli", explanation="Maijā.")
    await feedback.due_fixed_questions()  # nothing is due: nothing is asked
    for template in (proposals.STATUS_PUSH, feedback.FIXED_PUSH):
        if template == feedback.FIXED_PUSH:
            await proposals.change_status(
                proposal.id, "implemented", actor="cli", explanation="Salabots."
            )
            await feedback.due_fixed_questions(datetime.now(UTC) + timedelta(days=4))
        row = await Delivery.filter(template=template).order_by("-id").first()
        assert row is not None
        request = RenderRequest(row.template, json.loads(row.params), author.language, row.channel)
        push = await render(request)
        assert push is not None
        await walker._then([push])
        if template == proposals.STATUS_PUSH:
            await walker.press(f"pr:r:{proposal.id}")
            await walker.text("Bedre kļūst dziļāka.")
    await walker.press(f"pr:fx:{proposal.id}:1:no")
    rating = f"pr:rt:{proposal.id}:1:4"  # on the message above the comment's question
    assert rating in walker.payloads
    await walker._then(await chat.press_payload(rating))
    await walker.choose("prep:write", "_cancel")


async def composer_walk(walker: Walker, m: Municipality) -> None:
    hoods, topics = [n.id for n in m.neighbourhoods], [t.id for t in m.topics]
    await walker.command("announce")
    await walker.text("Rīt nebūs ūdens.")
    await walker.choose("ann:card", "text-en")
    await walker.text("No water tomorrow.")
    await walker.choose("ann:card", "text-en")
    await walker.choose("ann:text", "remove")
    await walker.choose("ann:card", "image")
    await walker.photo()
    await walker.choose("ann:card", "image")
    await walker.choose("ann:image", "_back")
    await walker.choose("ann:card", "audience")
    await walker.choose("ann:audience", "neighbourhood")
    for key in dict.fromkeys([hoods[-1], hoods[0]]):  # on the last page, then the first
        await walker.choose("ann:pick", key)
    await walker.choose("ann:pick", "_done")
    await walker.choose("ann:card", "audience")
    await walker.choose("ann:audience", "topic")
    await walker.choose("ann:pick", topics[-1])
    await walker.choose("ann:pick", "_back")
    await walker.choose("ann:audience", "all")
    await walker.choose("ann:card", "urgent")
    await walker.choose("ann:card", "when")
    await walker.choose("ann:when", "now")
    await walker.choose("ann:card", "preview")
    assert walker.live is not None and walker.live.buttons[0][0].label == walker.said(
        SEND_FOR_APPROVAL
    )
    await walker.choose("ann:preview", "edit")
    await walker.choose("ann:card", "preview")
    await walker.choose("ann:preview", "send")  # urgent: waits for an admin
    await walker.command("announce")
    await walker.text("Rīt tirgus.")
    await walker.choose("ann:card", "when")
    await walker.text("10:00")
    await walker.choose("ann:card", "preview")
    await walker.choose("ann:preview", "send")  # scheduled for the next 10:00
    await walker.command("announce")
    await walker.text("Melnraksts.")
    await walker.choose("ann:card", "discard")
    await walker.command("announcements")


async def poll_composer_walk(walker: Walker, m: Municipality) -> None:
    """A staff member through every step of the poll composer and the staff's poll list."""
    hoods = [n.id for n in m.neighbourhoods]
    await walker.command("newpoll")
    await walker.text("Kur likt jaunos soliņus?")
    await walker.choose("pc:card", "q-en")
    await walker.text("Where should the new benches go?")
    await walker.choose("pc:card", "q-en")
    await walker.choose("pc:question", "remove")
    await walker.choose("pc:card", "options")
    for label in ("Parkā", "Pie skolas", "Upes krastā, kur bērni spēlējas"):
        await walker.choose("pc:options", "add")
        await walker.text(label)
        await walker.text(label + " (en)")
        await walker.choose("pc:option", "_skip")
    await walker.choose("pc:options", "rm1")
    await walker.choose("pc:options", "_back")
    await walker.choose("pc:card", "audience")
    await walker.choose("pc:audience", "neighbourhood")
    for key in dict.fromkeys([hoods[-1], hoods[0]]):
        await walker.choose("pc:pick", key)
    await walker.choose("pc:pick", "_done")
    await walker.choose("pc:card", "opens")
    await walker.text("10:00")
    await walker.choose("pc:card", "closes")
    await walker.choose("pc:closes", "d3")
    await walker.choose("pc:card", "reminders")
    await walker.choose("pc:reminders", f"add{24 * 3600}")
    await walker.text("12h")
    await walker.choose("pc:reminders", "_back")
    await walker.choose("pc:card", "settings")
    await walker.choose("pc:settings", "many")
    await walker.choose("pc:settings", "_done")
    await walker.choose("pc:card", "preview")
    await walker.choose("pc:preview", "edit")
    await walker.choose("pc:card", "preview")
    await walker.choose("pc:preview", "create")
    poll = await Poll.filter(author=f"webchat:{walker.chat.user_id}").order_by("-id").first()
    assert poll is not None and poll.state == "scheduled"
    await walker.command("polls")
    await walker.press(f"pst:res:{poll.id}")
    await walker.command("polls")
    await walker.press(f"pst:move:{poll.id}")
    await walker.text("20.12.2099 18:00")
    await walker.command("polls")
    await walker.press(f"pst:cancel:{poll.id}")
    await walker.press(f"pst:cancel:{poll.id}:yes")
    await walker.command("newpoll")
    await walker.text("Melnraksts?")
    await walker.choose("pc:card", "discard")


async def reviewer_walk(walker: Walker) -> None:
    """A moderator through every step of the review queue (three proposals to act on)."""
    # The residents' walks before left proposals of their own: reviewed, out of the queue.
    await Proposal.filter(status="received").update(status="under_review")
    async with open_session("webchat", "author", "") as session:
        author = session.resident
    made = [
        await proposals.submit(author, Draft("roads", "municipality", text, "lv"))
        for text in ("Bedre", "Tā pati bedre", "Valsts ceļš")
    ]
    await ProposalPhoto.create(proposal_id=made[0].id, key="a" * 64)
    await walker.command("start")
    await walker.choose("onb:language", walker.language)
    await walker.choose("onb:neighbourhood", "_skip")
    await walker.choose("onb:topics", "_done")
    await walker.choose("onb:privacy", "_yes")
    await walker.command("review")
    await walker.choose("rv:card", "photos")
    await walker.choose("rv:card", "accept")
    await walker.choose("rv:card", "answer")
    await walker.text("Paldies, skatāmies.")
    await walker.choose("rv:card", "status")
    await walker.choose("rv:status", "planned")
    await walker.text("15.06.2099")
    await walker.choose("rv:explain", "_skip")
    await walker.choose("rv:card", "expected")
    await walker.text("01.07.2099")
    await walker.text("Lietus.")
    await walker.choose("rv:card", "status")
    await walker.choose("rv:status", "implemented")
    if walker.caps.takes_photos:
        await walker.choose("rv:completed", "_skip")
    await walker.text("Salabots.")
    await walker.choose("rv:card", "move")
    await walker.choose("rv:move", "_back")
    await walker.choose("rv:card", "next")
    await walker.choose("rv:card", "duplicate")
    await walker.text(made[0].reference)
    await walker.choose("rv:card", "hide")
    await walker.text("Aizskaroši vārdi.")
    await walker.choose("rv:card", "next")
    await walker.choose("rv:card", "status")
    await walker.choose("rv:status", "not_ours")
    await walker.text("Valsts ceļi")
    await walker.text("Nodots valsts ceļu pārvaldītājam.")
    await walker.choose("rv:card", "close")
    await walker.command("summary")


async def admin_walk(walker: Walker) -> None:
    pending = await Announcement.get(state="pending")
    scheduled = await Announcement.get(state="scheduled")
    going = await deliveries.create_announcement(
        author="cli", texts={"lv": "Iet"}, audience={"kind": "all"}, send_at=datetime.now(UTC)
    )
    await deliveries.release(going, datetime.now(UTC))
    await walker.command("announcements")
    await walker.press(f"staff:cancel:{scheduled.id}")
    await walker.press(LIST)  # "No, keep it"
    await walker.press(f"staff:approve:{pending.id}")
    await walker.press(f"staff:cancel:{going.id}")
    await walker.press(f"staff:cancel:{going.id}:yes")
    await walker.command("announcements")
    await walker.press(f"staff:cancel:{scheduled.id}")
    await walker.press(f"staff:cancel:{scheduled.id}:yes")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("municipality", ["demo", "31 neighbourhoods"])
async def test_every_step_of_every_dialog_fits_the_strictest_channel_and_drops_nothing(
    config: Config, language: str, municipality: str
) -> None:
    if municipality != "demo":
        config = await with_municipality(config, big_municipality())
    config = replace(config, limits=UNTHROTTLED)
    m = config.municipality
    dispatcher = Dispatcher(
        config, files={"webchat": PhotoSource()}, capabilities={"webchat": STRICT}
    )
    await staff.grant("webchat", "writer", "communications", actor="test")
    await staff.grant("webchat", "admin", "admin", actor="test")
    await staff.grant("webchat", "moderator", "moderator", actor="test")
    walkers = [
        Walker(Chat(dispatcher, user_id=who, locale=language), STRICT)
        for who in ("resident", "writer", "admin", "moderator")
    ]
    resident, writer, admin, moderator = walkers
    await resident_walk(resident, m)
    await feedback_walk(resident, config)
    await composer_walk(writer, m)
    await poll_composer_walk(writer, m)
    await admin_walk(admin)
    await reviewer_walk(moderator)

    shown = set().union(*(w.states for w in walkers))
    every_step = {state for dialog in REGISTRY.dialogs for state in dialog.steps}
    assert every_step - shown == set(), "a step this walk never showed"
    offered = set().union(*(w.payloads for w in walkers))
    for family in ("menu:mute", "menu:unmute", "lang:", "staff:approve:", "staff:decline:"):
        assert any(p.startswith(family) for p in offered), family
    paged = set().union(*(w.paged for w in walkers))
    # The demo fits every message on one page; the big one pages the neighbourhoods and the
    # topics wherever they are offered.
    many = {"onb:neighbourhood", "onb:topics", "set:neighbourhood", "set:topics", "ann:pick"}
    many |= {"pc:pick"}  # the poll composer's audience
    # …and where proposals are: the draft's neighbourhood, and the neighbourhoods to browse
    # (named by the first one's button, "pr:b:{id}").
    many |= {"prop:hood", f"pr:b:{m.neighbourhoods[0].id}"}
    assert paged == (set() if municipality == "demo" else many)


# --- the engine's pages ------------------------------------------------------------------
def test_pages_keep_every_choice_once_in_order_and_the_pinned_rows_on_each() -> None:
    for limit, choices, width, pinned_shape in itertools.product(
        range(3, 14), range(0, 41), (1, 2, 3, 5), ((), (1,), (2,), (1, 1), (3,))
    ):
        made = itertools.count()
        choice_rows = [
            [Button(f"c{next(made)}", "x") for _ in range(min(width, choices - start))]
            for start in range(0, choices, width)
        ]
        pinned_rows = [[Button(f"p{next(made)}", "x") for _ in range(n)] for n in pinned_shape]
        rows = choice_rows + pinned_rows
        pages = paginate(rows, len(pinned_rows), limit)
        total = sum(len(row) for row in rows)
        where = (limit, choices, width, pinned_shape)
        if total <= limit:
            assert pages == [(rows, [])], where
            continue
        pinned_kept = pinned_rows if sum(pinned_shape) + 3 <= limit else []
        seen: list[str] = []
        for index, (page_choices, page_pinned) in enumerate(pages):
            navigation = (index > 0) + (index < len(pages) - 1)
            count = (
                sum(len(r) for r in page_choices) + navigation + sum(len(r) for r in page_pinned)
            )
            assert count <= limit, where
            assert page_choices, where
            assert page_pinned == pinned_kept, where
            seen += [b.label for row in page_choices for b in row]
        everything_paged = [row for row in rows if row not in pinned_kept or not pinned_kept]
        assert seen == [b.label for row in everything_paged for b in row], where


# --- paging a long list --------------------------------------------------------------------
@pytest.mark.parametrize("channel", CHANNELS)
async def test_thirty_one_neighbourhoods_are_all_reachable_and_the_chosen_one_is_saved(
    config: Config, channel: str
) -> None:
    config = await with_municipality(config, big_municipality())
    caps = CHANNELS[channel]
    chat = Chat(Dispatcher(config, capabilities={"webchat": caps}), locale="en")
    await chat.command("start")
    await chat.choose("onb:language", "en")
    assert chat.texts() == [tr("en", NEIGHBOURHOOD_QUESTION)]
    pages = [chat.last[0]]
    while (more := _labelled(pages[-1], tr("en", MORE))) is not None:
        await chat.press_payload(more.payload)
        assert chat.texts() == [tr("en", NEIGHBOURHOOD_QUESTION)]
        assert chat.last[0].replace is caps.can_edit, "a page replaces the message where it can"
        pages.append(chat.last[0])
    reached = [_parts(b.payload)[1] for page in pages for b in page.all_buttons()]
    hoods = [n.id for n in config.municipality.neighbourhoods]
    assert [value for value in reached if value in hoods] == hoods
    assert reached.count("_skip") == len(pages), "Skip on every page"
    assert len(pages) == (3 if channel == "strict" else 1)
    labels = [b.label for page in pages for b in page.all_buttons()]
    assert ("Pētersala" in labels) is (channel == "strict")  # the short form where needed
    assert ("Pētersala-Andrejsala" in labels) is (channel != "strict")

    # The last page's last neighbourhood, chosen: onboarding goes on and it is saved.
    await chat.choose("onb:neighbourhood", hoods[-1])
    await chat.choose("onb:topics", "_done")
    await chat.choose("onb:privacy", "_yes")
    assert await residents.neighbourhood_key(await resident_of(chat)) == hoods[-1]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_long_list_of_announcements_is_paged_and_every_one_can_be_cancelled(
    config: Config, channel: str
) -> None:
    caps = CHANNELS[channel]
    await staff.grant("webchat", "staff-1", "communications", actor="test")
    later = datetime.now(UTC) + timedelta(hours=2)
    rows = [
        await deliveries.create_announcement(
            author="cli", texts={"lv": f"Nr. {n}"}, audience={"kind": "all"}, send_at=later
        )
        for n in range(15)
    ]
    chat = Chat(Dispatcher(config, capabilities={"webchat": caps}), user_id="staff-1", locale="en")
    await chat.command("announcements")
    pages = [chat.last[0]]
    while (more := _labelled(pages[-1], tr("en", MORE))) is not None:
        await chat.press_payload(more.payload)
        pages.append(chat.last[0])
        assert pages[-1].text == pages[0].text, "the list is the same; its buttons are paged"
    payloads = [b.payload for page in pages for b in page.all_buttons()]
    cancels = [f"staff:cancel:{row.id}" for row in rows]
    assert [p for p in payloads if p.startswith("staff:cancel:")] == cancels
    assert payloads.count(LIST) == len(pages), "Refresh on every page"
    assert len(pages) == (2 if channel == "strict" else 1)
    assert all(len(page.all_buttons()) <= caps.buttons_per_message for page in pages)

    # The last one, from the last page: asked, then cancelled.
    await chat.press_payload(cancels[-1])
    await chat.press(tr("en", "Yes, cancel it"))
    assert (await Announcement.get(id=rows[-1].id)).state == "cancelled"
    assert await Announcement.filter(state="cancelled").count() == 1


def _labelled(reply: Reply, label: str) -> Button | None:
    return next((b for b in reply.all_buttons() if b.label == label), None)


async def resident_of(chat: Chat) -> Resident:
    identity = await ChannelIdentity.get(channel=chat.channel, external_id=chat.user_id)
    return await Resident.get(id=identity.resident_id)  # type: ignore[attr-defined]


async def test_a_toggle_on_a_later_page_stays_on_that_page(config: Config) -> None:
    config = await with_municipality(config, big_municipality())
    chat = Chat(Dispatcher(config, capabilities={"webchat": STRICTEST}), locale="en")
    await chat.command("start")
    await chat.choose("onb:language", "en")
    await chat.choose("onb:neighbourhood", "avoti")
    await chat.choose("onb:topics", "_done")
    await chat.choose("onb:privacy", "_yes")
    await chat.command("settings")
    await chat.choose("set:home", "topics")
    await chat.press(tr("en", MORE))
    second = [b.label for b in chat.last[0].all_buttons()]
    assert "Mājokļi" in second
    await chat.choose("set:topics", "majokli")
    assert chat.texts() == [tr("en", SETTINGS_TOPICS)]
    assert [b.label for b in chat.last[0].all_buttons()] == [
        "✓ Mājokļi" if label == "Mājokļi" else label for label in second
    ]
    assert await residents.topic_keys(await resident_of(chat)) == ["majokli"]


# --- a channel that cannot edit -------------------------------------------------------------
@pytest.mark.parametrize("channel", CHANNELS)
async def test_where_a_channel_cannot_edit_a_toggle_comes_anew_and_the_old_buttons_expire(
    config: Config, channel: str
) -> None:
    caps = CHANNELS[channel]
    chat = Chat(Dispatcher(config, capabilities={"webchat": caps}), locale="en")
    await chat.onboard()
    await chat.command("settings")
    await chat.choose("set:home", "topics")
    first = chat.last[0]
    education = chat.button_for("set:topics", "education").payload
    culture = chat.button_for("set:topics", "culture").payload
    await chat.press_payload(education)
    assert chat.texts() == [tr("en", SETTINGS_TOPICS)]
    assert chat.last[0].replace is caps.can_edit
    # The first message's other button: where it was edited in place, it is the message
    # now on screen and works; where it was not, it shows what no longer is and expires.
    await chat.press_payload(culture)
    resident = await resident_of(chat)
    if caps.can_edit:
        assert chat.texts() == [tr("en", SETTINGS_TOPICS)]
        assert set(await residents.topic_keys(resident)) == {"education", "culture"}
        return
    assert chat.texts() == [tr("en", EXPIRED), tr("en", SETTINGS_TOPICS)]
    assert await residents.topic_keys(resident) == ["education"]
    assert not chat.last[1].replace
    # The message on screen now has buttons of its own, and they work.
    live = chat.button_for("set:topics", "culture").payload
    assert live != culture and chat.last[1].all_buttons() != first.all_buttons()
    await chat.press_payload(live)
    assert chat.texts() == [tr("en", SETTINGS_TOPICS)]
    assert set(await residents.topic_keys(resident)) == {"education", "culture"}


# --- a button of an earlier dialog instance -----------------------------------------------
@pytest.mark.parametrize("channel", CHANNELS)
async def test_the_send_button_of_an_earlier_draft_has_expired(
    config: Config, channel: str
) -> None:
    await staff.grant("webchat", "staff-1", "communications", actor="test")
    dispatcher = Dispatcher(config, capabilities={"webchat": CHANNELS[channel]})
    chat = Chat(dispatcher, user_id="staff-1", locale="en")

    async def draft_to_preview(text: str) -> str:
        await chat.command("announce")
        await chat.text(text)
        await chat.choose("ann:card", "preview")
        return chat.button_for("ann:preview", "send").payload

    old_send = await draft_to_preview("Vakardienas melnraksts.")
    old_nonce = (await chat.stored())[1][NONCE]
    await chat.choose("ann:preview", "discard")
    assert chat.texts()[0] == tr("en", DISCARDED)
    new_send = await draft_to_preview("Šodienas melnraksts.")
    state, data = await chat.stored()
    assert (state, data["texts"]) == ("ann:preview", {"lv": "Šodienas melnraksts."})
    assert data[NONCE] != old_nonce and old_send != new_send

    preview = chat.last[-1]
    await chat.press_payload(old_send)
    assert chat.texts() == [tr("en", EXPIRED), preview.text]
    assert await Announcement.all().count() == 0, "nothing scheduled"
    assert await chat.stored() == (state, data)

    await chat.press_payload(new_send)
    [sent] = await Announcement.all()
    assert sent.texts == {"lv": "Šodienas melnraksts."}


@pytest.mark.parametrize("channel", CHANNELS)
async def test_the_longest_payload_of_every_step_fits_64_bytes(
    config: Config, channel: str
) -> None:
    """Ids are at most 24 characters: with the longest, every payload a step can make."""
    longest = "x" * 23 + "1"
    m = from_mapping(
        {
            "municipality": {
                "neighbourhoods": [{"id": longest, "name": "Garā apkaime"}],
                "topics": [{"id": "y" * 23 + "2", "name": "Garā tēma"}],
            }
        }
    ).municipality
    config = replace(await with_municipality(config, m), limits=UNTHROTTLED)
    caps = replace(CHANNELS[channel], takes_photos=True)
    walker = Walker(
        Chat(
            Dispatcher(config, files={"webchat": PhotoSource()}, capabilities={"webchat": caps}),
            user_id="writer",
            locale="lv",
        ),
        replace(caps, payload_bytes=64),
    )
    await staff.grant("webchat", "writer", "communications", actor="test")
    await resident_walk(walker, m)
    await composer_walk(walker, m)
    await poll_composer_walk(walker, m)
    longest_payload = max(walker.payloads, key=lambda p: len(p.encode()))
    assert len(longest_payload.encode()) <= 64, longest_payload
    assert any(longest in p for p in walker.payloads)


def test_every_label_of_the_catalogs_fits_20_characters() -> None:
    """What the walk cannot reach in one configuration (an admin's own urgent "Send"):
    the labels are checked in the catalogs too, by their translators' note."""
    from babel.messages.pofile import read_po

    from bot.core.i18n import catalog_path

    too_long = []
    for language in LANGUAGES:
        with catalog_path(language).open("rb") as file:
            for message in read_po(file, locale=language):
                note = " ".join(message.auto_comments)
                if "a button label, at most 20 characters" not in note:
                    continue
                tr_ = translator(language)
                # The longest values the placeholders take: a six-digit id, ten options, a
                # reminder's span in its longest unit ("30 days").
                span = tr_.ngettext("{n} day", "{n} days", 30)
                said = tr_.gettext(message.id, id=123456, n=10, span=span)
                if len(said) > 20:
                    too_long.append(f"{language}: {message.id!r} -> {said!r}")
    assert too_long == []


# --- polls (issue 14): a resident's poll messages and list -----------------------------------
async def poll_walk(walker: Walker, config: Config) -> None:
    """Invitations checked as the worker renders them (the strictest channel: labels longer
    than a button are numbered), then tapped: a single choice changed, ten ticks and Done,
    the list paged through and a poll opened from it, a tap on a closed poll."""
    from storage import polls
    from storage.polls import PollDraft

    now = datetime.now(UTC)

    async def poll(options: list[str], **more: Any) -> int:
        made = await polls.create(
            PollDraft(
                {"lv": "Kur likt jaunos soliņus?", "ru": "Где поставить новые скамейки?"},
                [{"lv": label} for label in options],
                now - timedelta(minutes=1),
                now + timedelta(days=1),
                **more,
            ),
            author="cli",
        )
        await polls.open_due(now, now)
        return made.id

    single = await poll(["Parkā", "Pie skolas stadiona jaunajiem vārtiem", "Krastā"])
    many = await poll([f"Iespēja numur {n}" for n in range(10)], multiple=True)
    render = Pushes(config.municipality.zone, config=config)

    async def pushed(template: str, poll_id: int) -> None:
        request = RenderRequest(template, {"poll": poll_id}, walker.language, "")
        await walker._then([await render(request)])

    await pushed(polls.REMINDER, single)
    await pushed(polls.INVITE, single)
    await walker.press(f"pl:{single}:1")
    await walker.press(f"pl:{single}:2")
    await pushed(polls.REMINDER, many)
    await pushed(polls.INVITE, many)
    for position in range(10):
        await walker.press(f"pl:{many}:{position}")
    await walker.press(f"pl:{many}:done")
    for _ in range(13):
        await poll(["Jā", "Nē"])
    await walker.command("menu")
    await walker.press("menu:polls")
    await walker.press(f"pl:{many}:open")
    await walker.press(f"pl:{many}:3")
    await polls.close(single, actor="cli")
    await walker._then(await walker.chat.press_payload(f"pl:{single}:0"))
    await walker.command("polls")


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_residents_polls_fit_the_strictest_channel(config: Config, language: str) -> None:
    config = replace(config, limits=UNTHROTTLED)
    dispatcher = Dispatcher(config, capabilities={"webchat": STRICTEST})
    walker = Walker(Chat(dispatcher, user_id="voter", locale=language), STRICTEST)
    await walker.command("start")
    await walker.choose("onb:language", language)
    await walker.choose("onb:neighbourhood", "centrs")
    await walker.choose("onb:topics", "_done")
    await walker.choose("onb:privacy", "_yes")
    await poll_walk(walker, config)
    offered = walker.payloads
    assert {"menu:polls", "menu:main"} <= offered
    assert any(p.endswith(":done") for p in offered) and any(p.endswith(":open") for p in offered)
    assert any(p.startswith("pl:list:") for p in offered), "the list of 15 polls is paged"
    from storage.models import Ballot

    assert await Ballot.filter(choices__gt=0).count() == 2
