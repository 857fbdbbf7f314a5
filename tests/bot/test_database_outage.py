"""Thirty seconds without PostgreSQL under a running bot, as a real process.

The bot runs as in production (``python -m bot run``, tests.bot.test_delivery_processes),
Telegram by webhook or by long polling against the Bot API stand-in, Messenger against
the Graph stand-in, and the web chat open in Chromium. Then the database refuses every
connection (``ALLOW_CONNECTIONS false`` and its backends terminated) for 30 seconds while
residents write on every channel and a poll comes due, and comes back.

What residents and operators must see: an apology in the resident's language (once, not
at every redelivery), never a traceback; every message answered once the database is
back, none twice; the poll opened once and its invitation sent once to each; /healthz
503 during and 200 after, without a restart.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.channels.messenger import WEBHOOK_PATH as MESSENGER_PATH
from bot.channels.telegram import WEBHOOK_PATH as TELEGRAM_PATH
from bot.core.i18n import translator
from bot.core.messages import DATABASE_AWAY
from storage.models import Poll
from tests.bot.channels.browser import ChatPage, chromium
from tests.bot.channels.messenger_helpers import messenger_env
from tests.bot.test_delivery_processes import ROOT, Bots, bots, onboard
from tests.conftest import _admin, free_port
from tests.phrases import HELP, LANGUAGE_QUESTION, MUNICIPALITY, PRIVACY_QUESTION, tr
from tests.standins.graph_api import GraphStandIn
from tests.standins.messenger_webhook import MetaWebhook, Resident, delivery, text
from tests.standins.telegram_api import BotApiStandIn

__all__ = ["bots"]  # the fixture: a database of its own, and the bot processes

OUTAGE_SECONDS = 30
SECRET = "outage-test-webhook-secret"
APOLOGY_LV = translator("lv").gettext(DATABASE_AWAY)
RIGA = ZoneInfo("Europe/Riga")
FIRST_QUESTION_LV = tr("lv", LANGUAGE_QUESTION, municipality=MUNICIPALITY)
PRIVACY_LV = tr("lv", PRIVACY_QUESTION).split("\n", 1)[0]  # its first line
HELP_LV = tr("lv", HELP, municipality=MUNICIPALITY).split("\n", 1)[0]


async def health(port: int) -> int:
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=5)
            ) as response:
                return response.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def take_database_away(name: str) -> None:
    await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    await _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")


async def bring_database_back(name: str) -> None:
    await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


async def create_poll(bots: Bots, opens: datetime) -> None:
    """``iesaiste poll create`` opening at ``opens`` (Riga time), for every channel."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--config",
        bots.config,
        "poll",
        "create",
        "--question",
        "Vai atbalstāt jaunu parku?",
        "--option",
        "Jā",
        "--option",
        "Nē",
        "--opens",
        opens.astimezone(RIGA).strftime("%Y-%m-%dT%H:%M:%S"),
        "--closes",
        (opens + timedelta(days=3)).astimezone(RIGA).strftime("%Y-%m-%dT%H:%M"),
        cwd=ROOT,
        env={**os.environ, "IESAISTE_DATABASE_URL": bots.database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, (out + err).decode()


def count(texts: list[str], fragment: str) -> int:
    return sum(fragment in t for t in texts)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("mode", ["webhook", "polling"])
async def test_a_database_outage_loses_nothing_and_the_bot_recovers_by_itself(
    bots: Bots, database_url: str, mode: str
) -> None:
    name = database_url.rsplit("/", 1)[1]
    anna, *others = await onboard(3)  # on Telegram, in Latvian, at the main menu
    graph = await GraphStandIn().start()
    try:
        async with BotApiStandIn() as api, chromium() as browser:
            api.add_users([anna, *others])
            port = free_port()
            environ = {**messenger_env(graph), "IESAISTE_TELEGRAM_MODE": mode}
            if mode == "webhook":
                environ["IESAISTE_TELEGRAM_WEBHOOK_URL"] = f"http://127.0.0.1:{port}{TELEGRAM_PATH}"
                environ["IESAISTE_TELEGRAM_WEBHOOK_SECRET"] = SECRET
            bot = await bots.start(api, "bot", port, **environ)

            async def healthy() -> bool:
                return await health(port) == 200

            await bots.until(healthy, 60, "the bot to start")
            page = await ChatPage.open(await browser.new_page(), f"http://127.0.0.1:{port}/")
            maris = Resident(
                MetaWebhook(f"http://127.0.0.1:{port}{MESSENGER_PATH}"), graph, "7" * 16
            )
            # A poll that comes due in the middle of the outage.
            began = datetime.now(RIGA)
            await create_poll(bots, began + timedelta(seconds=15))

            # --- the outage -------------------------------------------------------------
            await take_database_away(name)
            away = time.monotonic()
            timeline: list[str] = []

            def said(what: str) -> None:
                timeline.append(f"{time.monotonic() - away:6.1f} s  {what}")

            async def unhealthy() -> bool:
                return await health(port) == 503

            await bots.until(unhealthy, 15, "/healthz to say 503")

            # Telegram: Anna asks for help; she is told it is kept, in Latvian, once,
            # however often Telegram delivers the update again meanwhile.
            api.send_text(anna, "/help")
            [apology_tg] = await api.wait_for_messages(anna, 1, timeout=15)
            assert apology_tg.text == APOLOGY_LV
            said("Telegram: the apology")
            # Messenger: the event cannot be stored, so it is not taken (503): Meta will
            # deliver it again; the resident is told meanwhile.
            graph.opened(maris.psid)
            body = delivery(text(maris.psid, "Labdien"))
            status, _ = await maris.meta.post(body)
            assert status == 503
            [apology_fb] = await maris.received(1, timeout=15)
            assert apology_fb.text == APOLOGY_LV
            said("Messenger: 503 to Meta, the apology")
            # The web chat: the frame is marked not sent, with a button to send it again.
            await page.say("Latviešu")
            not_sent = page.log.locator(".not-sent")
            await not_sent.wait_for(timeout=15_000)
            assert await not_sent.get_by_role("button").text_content() == tr("lv", "Send again")
            said("web chat: not sent, Send again")

            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - away)))
            assert await health(port) == 503
            await bring_database_back(name)
            said("the database is back")
            # --- back ---------------------------------------------------------------------

            await bots.until(healthy, 30, "/healthz to say 200 again, with no restart")
            said("/healthz 200")
            # Telegram delivers /help again (webhook) or it was never confirmed (polling):
            # answered now, once.
            await api.wait_until(
                lambda: count([m.text for m in api.messages(anna)], HELP_LV) == 1,
                30,
                "the help, once",
            )
            said("Telegram: the help")
            # Meta delivers the event again: taken now, answered once.
            status, _ = await maris.meta.post(body)
            assert status == 200
            [first_question] = await maris.received(1, timeout=20)
            assert first_question.text == FIRST_QUESTION_LV
            said("Messenger: Meta's redelivery taken, the first question")
            # The web chat: sent again, answered.
            await page.log.get_by_role("button", name=tr("lv", "Send again")).click()
            await page.log.locator(".not-sent").wait_for(state="detached", timeout=15_000)
            await page.bot.last.get_by_text(PRIVACY_LV).wait_for(timeout=15_000)
            said("web chat: sent again, the next question (privacy)")
            # The poll opened once, after the outage, and invited each resident once.
            await bots.until(
                lambda: all(
                    count([m.text for m in api.messages(chat)], "jaunu parku") == 1
                    for chat in (anna, *others)
                ),
                60,
                "one invitation each",
            )
            said("the poll opened, one invitation each")
            assert await Poll.all().values_list("state", flat=True) == ["open"]
            await asyncio.sleep(3)  # nothing more on its way
            texts = [m.text for m in api.messages(anna)]
            assert count(texts, APOLOGY_LV) == 1, texts
            assert count(texts, "jaunu parku") == 1, texts
            if mode == "polling":
                assert api.pending_update_count == 0
            await bot.stop()
            lines = bot.log.read_text(encoding="utf-8").splitlines()
            traced = [i for i, line in enumerate(lines) if "Traceback" in line]
            assert not traced, "\n".join(lines[traced[0] - 2 : traced[0] + 40])
            print(f"\n{mode}:\n" + "\n".join(timeline))
    finally:
        await bring_database_back(name)
        await graph.stop()
