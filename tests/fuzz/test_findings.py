"""What the fuzzing found, each pinned down end to end by the smallest input that showed it."""

from __future__ import annotations

import pytest

from storage.models import InboundEvent, Resident
from tests.bot.channels.messenger_helpers import StartPage
from tests.phrases import HELP, MUNICIPALITY, tr
from tests.standins import messenger_webhook as meta

pytestmark = pytest.mark.storage


async def test_a_mid_with_a_lone_surrogate_is_stored_and_answered_once(
    start_page: StartPage,
) -> None:
    # JSON can carry "\ud800", which UTF-8 cannot: hashing the mid for the inbox's key
    # raised, and Meta got a 500 (and would have delivered it again and again).
    page = await start_page()
    anna = page.resident("8100000001")
    item = meta.text(anna.psid, "/help", mid="m_\ud800")
    (answer,) = await anna.send(item)
    assert answer.text.startswith(tr("lv", HELP, municipality=MUNICIPALITY))
    status, _ = await page.meta.post(meta.delivery(item))  # Meta delivers it again
    assert status == 200
    await anna.received(0)
    assert len(page.graph.inbox(anna.psid)) == 1


@pytest.mark.parametrize("sender", ["١٢٣٤٥", "²³", "٣"])
async def test_a_sender_id_of_digits_that_are_not_ascii_is_no_resident(
    start_page: StartPage, sender: str
) -> None:
    # str.isdigit() takes Arabic-Indic and superscript digits: such a "PSID" became a
    # resident, and the bot then answered an account Meta never named.
    page = await start_page()
    status, _ = await page.meta.post(meta.delivery(meta.text(sender, "/help")))
    assert status == 200
    assert await InboundEvent.all().count() == 0
    assert await Resident.all().count() == 0
    assert page.graph.sent == []
