"""Quick polls end to end: the whole bot against the Bot API stand-in over real HTTP, its
delivery worker sending the invitations. A poll opened for one neighbourhood reaches
exactly its residents; a tap edits the invitation in place (editMessageText) to show the
answer, a second tap changes it, a multiple-choice poll toggles its ticks then counts
them on Done; a tap once the poll closed shows the results; a forged payload changes
nothing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage import polls
from storage.models import Ballot, Delivery
from storage.polls import PollDraft
from tests.bot.channels.telegram_helpers import Chat, eventually, labels, telegram_env
from tests.bot.test_announcements import config_without_quiet_hours, onboarded
from tests.conftest import RuntimeFactory
from tests.phrases import tr
from tests.standins.telegram_api import BotApiStandIn, BotMessage, JSONDict

ANNA, JANIS, FAR = 2001, 2002, 2003  # Centrs (English), Centrs (Latvian), Jaunciems


def draft(**more: object) -> PollDraft:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "question": {"lv": "Kur likt soliņus?", "en": "Where should the benches go?"},
        "options": [{"lv": "Parkā", "en": "In the park"}, {"lv": "Pie skolas", "en": "At school"}],
        "opens_at": now - timedelta(seconds=5),
        "closes_at": now + timedelta(days=1),
        "audience": {"kind": "neighbourhood", "keys": ["centrs"]},
    }
    values.update(more)
    return PollDraft(**values)  # type: ignore[arg-type]


def forged(api: BotApiStandIn, pressed: JSONDict, data: str) -> JSONDict:
    """A callback query no button of ours carries: a real press with its data changed (and
    the next update id of the stand-in, so getUpdates' offset does not skip later ones)."""
    update = copy.deepcopy(pressed)
    update["update_id"] = api._new_update_id()
    update["callback_query"]["id"] = str(update["update_id"])
    update["callback_query"]["data"] = data
    return update


async def invitation(api: BotApiStandIn, user_id: int, poll_id: int) -> BotMessage:
    async def arrived() -> bool:
        return any(f"pl:{poll_id}:0" in m.callback_data() for m in api.messages(user_id))

    await eventually(arrived, what=f"the invitation to poll {poll_id} in chat {user_id}")
    return next(m for m in api.messages(user_id) if f"pl:{poll_id}:0" in m.callback_data())


async def test_a_poll_through_telegram(start_bot: RuntimeFactory, tmp_path: Path) -> None:
    async with BotApiStandIn() as api:
        api.add_user(ANNA, "Anna", language_code="en")
        api.add_user(JANIS, "Jānis", language_code="lv")
        api.add_user(FAR, "Pēteris", language_code="lv")
        await start_bot(config_without_quiet_hours(tmp_path), **telegram_env(api))
        await onboarded(str(ANNA), "en", "centrs")
        await onboarded(str(JANIS), "lv", "centrs")
        await onboarded(str(FAR), "lv", "jaunciems")
        anna, janis = Chat(api, ANNA), Chat(api, JANIS)

        poll = await polls.create(draft(), author="cli")
        await polls.open_due(datetime.now(UTC))
        to_anna = await invitation(api, ANNA, poll.id)
        to_janis = await invitation(api, JANIS, poll.id)
        assert to_anna.text.startswith("Where should the benches go?")
        assert to_janis.text.startswith("Kur likt soliņus?")
        assert labels(to_anna) == ["In the park", "At school"]
        assert to_anna.callback_data() == [f"pl:{poll.id}:0", f"pl:{poll.id}:1"]
        # Exactly the audience: two invitations queued, none to Jaunciems.
        assert await Delivery.filter(template=polls.INVITE).count() == 2
        assert api.messages(FAR) == []

        # One tap: the invitation itself now shows the answer (edited, nothing new sent).
        edited = await anna.press_to_edit(to_anna, "At school")
        assert edited is to_anna and to_anna.edits == 1
        assert tr("en", "Your answer: {answer}", answer="At school") in to_anna.text
        assert labels(to_anna) == ["In the park", "✓ At school"]
        # A second tap changes it: still one ballot.
        await anna.press_to_edit(to_anna, "In the park")
        assert labels(to_anna) == ["✓ In the park", "At school"]
        assert tr("en", "Your answer: {answer}", answer="In the park") in to_anna.text
        assert await Ballot.filter(poll_id=poll.id).count() == 1
        assert (await polls.tally(poll)).counts == [1, 0]

        # A forged payload: answered plainly, nothing recorded, the message untouched.
        before = len(anna.messages)
        api.redeliver(forged(api, anna.last_update, f"pl:{poll.id}:7"))
        (said,) = (await api.wait_for_messages(ANNA, before + 1))[before:]
        assert said.text == tr("en", "That button has expired.")
        assert (await polls.tally(poll)).counts == [1, 0]

        # Somebody outside the audience, with a button copied from elsewhere: refused.
        (menu,) = await Chat(api, FAR).send("/menu")
        pressed = api.press_button(FAR, menu.message_id, menu.callback_data()[0])
        await api.wait_for_messages(FAR, 2)
        api.redeliver(forged(api, pressed, f"pl:{poll.id}:0"))
        refusal = (await api.wait_for_messages(FAR, 3))[-1]
        assert refusal.text == tr(
            "lv",
            "Sorry, this poll is meant for another group of residents (a neighbourhood or a "
            "topic), so I cannot take your answer to it.",
        )
        assert await Ballot.filter(poll_id=poll.id).count() == 1

        # A multiple-choice poll: taps toggle, Done counts them; each an edit in place.
        several = await polls.create(draft(multiple=True), author="cli")
        await polls.open_due(datetime.now(UTC))
        many = await invitation(api, JANIS, several.id)
        assert labels(many) == ["Parkā", "Pie skolas", "Gatavs"]
        await janis.press_to_edit(many, "Parkā")
        await janis.press_to_edit(many, "Pie skolas")
        await janis.press_to_edit(many, "✓ Parkā")
        assert labels(many) == ["Parkā", "✓ Pie skolas", "Gatavs"]
        assert (await polls.tally(several)).ballots == 0
        await janis.press_to_edit(many, "Gatavs")
        assert tr("lv", "Your answer: {answer}", answer="Pie skolas") in many.text
        assert (await polls.tally(several)).counts == [0, 1]

        # Closed: a tap on the old invitation says so, shows the results, and the buttons go.
        await polls.close(poll.id, actor="cli")
        await janis.press_to_edit(to_janis, "Parkā")
        assert tr("lv", "This poll is closed.") in to_janis.text
        assert to_janis.callback_data() == []
        assert await Ballot.filter(poll_id=poll.id).count() == 1
