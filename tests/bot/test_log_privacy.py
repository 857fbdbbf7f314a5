"""No log line keeps a resident's platform id in clear: a keyed tag names the account.

The last test runs every channel at once at DEBUG, in both formats, and reads every line
the root handler writes, as ``iesaiste run`` sets it up, for every secret and every id.

The whole bot runs against the local Bot API over real HTTP, as in production, with
logging at DEBUG and the libraries' levels as ``iesaiste run`` sets them. The flows are
those that log an account: a resident typing a staff command, a resident over the
throttle, a resident who blocked the bot (an answer and a push), a staff account that
never opened the bot, and failures whose exception text names the account.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.messenger import WEBHOOK_PATH as MESSENGER_PATH
from bot.channels.telegram import SECRET_HEADER as TG_SECRET_HEADER
from bot.channels.telegram import WEBHOOK_PATH as TG_WEBHOOK_PATH
from bot.channels.webchat import COOKIE as WEBCHAT_COOKIE
from bot.cli import _secrets as cli_secrets
from bot.core import logs
from bot.core.config import Config, load
from bot.core.logs import who
from handlers import middlewares
from handlers.dispatcher import FAILED, UNKNOWN_COMMAND
from storage import announcements, settings
from storage.announcements import Draft
from storage.models import Delivery, Resident
from tests.bot.channels.messenger_helpers import VERIFY_TOKEN, Page, graph, messenger_env
from tests.bot.channels.telegram_helpers import Chat, eventually, telegram_env
from tests.bot.channels.test_messenger import onboard as messenger_onboard
from tests.bot.channels.test_webchat_guard import Tab, new_cookie, tab
from tests.conftest import RuntimeFactory, free_port
from tests.phrases import throttled, tr
from tests.standins import messenger_webhook as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.graph_core import APP_SECRET
from tests.standins.telegram_api import BotApiStandIn

RESIDENT = 7305119842  # types a staff command, then writes too fast
BLOCKER = 7305119843  # blocked the bot
ABSENT_STAFF = 6204118731  # an admin in the configuration who never opened the bot
THROTTLE = 6

storage = pytest.mark.storage

__all__ = ["graph"]  # the Graph stand-in fixture


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Every logger's level and the root's handlers as they were, after the test."""
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    root.handlers[:] = handlers
    root.setLevel(root_level)
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))


def config_file(tmp_path: Path) -> str:
    """The example configuration with a throttle of 6 messages, an absent admin, no quiet hours."""
    text = Path("config.example.toml").read_text(encoding="utf-8")
    text = text.replace("throttle_messages = 20", f"throttle_messages = {THROTTLE}")
    text = text.replace('quiet_start = "21:00"', 'quiet_start = "00:00"')
    text = text.replace('quiet_end = "09:00"', 'quiet_end = "00:00"')
    text += f'\n[[staff]]\nuser = "telegram:{ABSENT_STAFF}"\nrole = "admin"\n'
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def record_text(record: logging.LogRecord) -> str:
    """All a record would print: its message and the text of its exception, if any."""
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        text += "\n" + "".join(traceback.format_exception(*record.exc_info))
    return text + (record.exc_text or "")


async def push_to_everyone() -> None:
    """An urgent, approved announcement to all, due now: the bot releases and sends it."""
    draft = Draft({"lv": "Rīt nebūs ūdens."}, {"kind": "all"}, datetime.now(UTC), urgent=True)
    await announcements.schedule(draft, author="cli", approved_by="cli")


@storage
async def test_the_flows_that_log_an_account_name_it_by_its_tag_never_by_its_id(
    start_bot: RuntimeFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    restored_logging: None,
) -> None:
    logs.quiet_libraries("DEBUG")  # as `iesaiste run` with IESAISTE_LOG_LEVEL=DEBUG
    caplog.set_level(logging.DEBUG)
    async with BotApiStandIn() as api:
        api.add_user(RESIDENT, "Anna", language_code="en")
        api.add_user(BLOCKER, "Jānis", language_code="en")
        runtime = await start_bot(config_file(tmp_path), **telegram_env(api))
        resident, blocker = Chat(api, RESIDENT), Chat(api, BLOCKER)

        (refused,) = await resident.send("/announce")
        assert refused.text.startswith(tr("en", UNKNOWN_COMMAND) + "\n\n")
        for n in range(THROTTLE - 1):
            await resident.send(f"message {n}")
        sent = datetime.now(UTC)
        (warned,) = await resident.send("one too many")
        answered = datetime.now(UTC)
        flooder = await Resident.get(identities__external_id=str(RESIDENT))
        assert flooder.throttle_window_start is not None
        assert warned.text in throttled("en", flooder.throttle_window_start, 60, sent, answered)

        await blocker.onboard(topics=())
        api.block(BLOCKER)
        await push_to_everyone()
        await eventually(
            lambda: Delivery.filter(external_id=str(BLOCKER), state="blocked").exists(),
            timeout=20,
            what="the push to the blocked chat",
        )
        api.send_text(BLOCKER, "hello?")  # the answer meets the blocked chat too
        await eventually(lambda: "blocked the bot" in caplog.text, what="the blocked answer")
        await runtime.stop()

    messages = [record.getMessage() for record in caplog.records]
    assert f"staff command /announce refused to {who('telegram', RESIDENT)}" in messages
    assert f"throttled {who('telegram', RESIDENT)}" in messages
    assert f"telegram: {who('telegram', BLOCKER)} blocked the bot" in messages
    assert f"telegram: no staff menu for {who('telegram', ABSENT_STAFF)} (Chat not found)" in (
        messages
    )
    for record in caplog.records:
        text = record_text(record)
        for user_id in (RESIDENT, BLOCKER, ABSENT_STAFF):
            assert str(user_id) not in text, f"{record.name}: {text}"


@pytest.fixture
def production_log(restored_logging: None) -> io.StringIO:
    """Logging exactly as ``iesaiste run`` sets it up at DEBUG, written into a buffer."""
    logs.configure("DEBUG", [])
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    return buffer


@storage
async def test_an_exception_that_names_the_account_is_logged_with_its_tag(
    start_bot: RuntimeFactory, production_log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Texts we do not write: Telegram's error, and a database error with the key in it
    (PostgreSQL's DETAIL names the row), each logged with its traceback."""
    async with BotApiStandIn() as api:
        api.add_user(RESIDENT, "Anna", language_code="en")
        runtime = await start_bot(**telegram_env(api))
        resident = Chat(api, RESIDENT, may_fail=True)  # the failures are what it is about
        await resident.send("/start")

        api.fail_next("sendMessage", 400, f"Bad Request: chat {RESIDENT} is not available")
        api.send_text(RESIDENT, "/help")
        await eventually(lambda: "was refused" in production_log.getvalue())

        async def role_of(channel: str, user_id: str) -> str:
            raise RuntimeError(f"Key (channel, external_id)=({channel}, {user_id}) is locked")

        monkeypatch.setattr(middlewares.staff, "role_of", role_of)
        (apology,) = await resident.send("/announce")
        assert apology.text == tr("en", FAILED)
        await runtime.stop()

    output = production_log.getvalue()
    tag = who("telegram", RESIDENT)
    refused = (
        f"telegram: an answer to {tag} was refused: "
        f"sendMessage: 400 Bad Request: chat {tag} is not available"
    )
    assert f"{refused}\nTraceback" in output
    assert f"of {tag} failed\nTraceback" in output
    assert f"RuntimeError: Key (channel, external_id)=(telegram, {tag}) is locked" in output
    assert str(RESIDENT) not in output


@storage
async def test_the_tag_is_keyed_with_the_deployments_secret_alike_in_every_worker(
    start_bot: RuntimeFactory,
) -> None:
    """The key lives in the database: a restarted or second worker tags a resident alike,
    and without the key nobody can find the id by hashing every possible one."""
    runtime = await start_bot()
    key = await settings.secret("log_tag_key")
    expected = hmac.new(key.encode(), f"telegram:{RESIDENT}".encode(), hashlib.sha256)
    tag = who("telegram", RESIDENT)
    assert tag == f"telegram:{expected.hexdigest()[:8]}"
    assert tag != f"telegram:{hashlib.sha256(f'telegram:{RESIDENT}'.encode()).hexdigest()[:8]}"
    await runtime.stop()

    logs.use_tag_key("a fresh process's own key")
    assert who("telegram", RESIDENT) != tag
    await start_bot()  # another worker on the same database
    assert who("telegram", RESIDENT) == tag


def test_the_handlers_filter_redacts_secrets_and_tags_whole_ids_only() -> None:
    """The filter ``configure`` installs, on one line and on an exception's text."""
    token = "123456:AAE-secret_part"
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(logs.RedactSecrets([token]))
    logger = logging.getLogger("tests.log_privacy")
    logger.addHandler(handler)
    try:
        with logs.about("telegram", 42):
            try:
                raise RuntimeError(f"POST /bot{token}/sendMessage to chat 42 failed")
            except RuntimeError:
                logger.error("announcement 420 to 42: %s", "no luck", exc_info=True)
    finally:
        logger.removeHandler(handler)
    tag = who("telegram", 42)
    assert buffer.getvalue().splitlines()[0] == f"announcement 420 to {tag}: no luck"
    assert f"RuntimeError: POST /bot[redacted]/sendMessage to chat {tag} failed" in (
        buffer.getvalue()
    )
    assert token not in buffer.getvalue() and "secret_part" not in buffer.getvalue()


# --- every channel at DEBUG, both formats ---------------------------------------------
# Long, distinctive values: a line holding one cannot be a coincidence of digits.
TG_RESIDENT = 8713402659123  # onboards and proposes
TG_BLOCKER = 8713402659456  # blocked the bot
PSID = "27318845120963377"  # onboards, proposes, then the page's token is refused
TG_TOKEN = "7712345678:AAHq-Zp9distinctive_token_x1y2z3"
TG_WEBHOOK_SECRET = "tg-hook-secret-Q7w8e9r0t1y2u3i4o5p6"
COOKIE_SECRET = "webchat-cookie-secret-Zx81Kq02Lm93Np74Rb56"
FORGED_VISITOR = "f00dfeed" * 4  # a web-chat id with a signature that is not ours


def everything_on(api: BotApiStandIn, graph: GraphStandIn, log_format: str) -> dict[str, str]:
    """Telegram by webhook, Messenger and the web chat, logging at DEBUG in ``log_format``."""
    port = free_port()
    return {
        **telegram_env(
            api,
            IESAISTE_TELEGRAM_MODE="webhook",
            IESAISTE_TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}{TG_WEBHOOK_PATH}",
            IESAISTE_TELEGRAM_WEBHOOK_SECRET=TG_WEBHOOK_SECRET,
        ),
        **messenger_env(graph),
        "IESAISTE_WEBCHAT_COOKIE_SECRET": COOKIE_SECRET,
        "IESAISTE_HTTP_PORT": str(port),
        "IESAISTE_LOG_LEVEL": "DEBUG",
        "IESAISTE_LOG_FORMAT": log_format,
    }


def logging_as_iesaiste_run(config: Config) -> io.StringIO:
    """``iesaiste``'s own set-up (bot.cli: its secrets, level and format), into a buffer."""
    logs.configure(config.log_level, cli_secrets(config), config.log_format)
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    return buffer


async def web_frame_with(opened: Tab, label: str) -> dict[str, Any]:
    """The next message of the bot with a button labelled ``label``."""
    while True:
        frame = await opened.frame()
        labels = [b["label"] for row in frame.get("buttons", []) for b in row]
        if label in labels:
            return frame


async def web_tap(opened: Tab, frame: dict[str, Any], label: str) -> None:
    (payload,) = [b["payload"] for row in frame["buttons"] for b in row if b["label"] == label]
    await opened.press(payload)


async def on_the_web_chat(base: str) -> list[str]:
    """Onboarding, a proposal and malformed frames; returns what names this browser."""
    cookie = await new_cookie(base)
    async with tab(base, cookie) as opened:
        await web_frame_with(opened, "English")
        await opened.press("onb:language:en")
        question = await web_frame_with(opened, "Centre")
        await opened.choose(question, "onb:neighbourhood", "centrs")
        await opened.choose(await web_frame_with(opened, "Done"), "onb:topics", "_done")
        await web_tap(opened, await web_frame_with(opened, "I agree"), "I agree")
        await web_frame_with(opened, "Settings")
        await opened.say("/propose")
        await web_tap(opened, await web_frame_with(opened, "Roads, pavements"), "Roads, pavements")
        await opened.say("Broken street light at the bus stop")
        await web_tap(opened, await web_frame_with(opened, "Submit"), "Submit")
        await web_frame_with(opened, "Settings")  # the thanks, with the main menu
        for bad in ("not json", '{"type": "bogus", "id": "x"}', '{"type": "text"}'):
            await opened.send(bad)
            assert (await opened.frame())["type"] == "error"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        forged = {"Cookie": f"{WEBCHAT_COOKIE}={FORGED_VISITOR}.{'0' * 64}", "Origin": base}
        async with http.get(base.replace("http://", "ws://") + "/ws", headers=forged) as refused:
            assert refused.status == 403
    visitor, _, signature = cookie.partition(".")
    return [cookie, visitor, signature, FORGED_VISITOR]


async def on_telegram(api: BotApiStandIn, webhook: str) -> None:
    """Onboarding and a proposal by webhook, then a refused answer and malformed posts."""
    api.add_user(TG_RESIDENT, "Anna", language_code="en")
    api.add_user(TG_BLOCKER, "Jānis", language_code="en")
    resident = Chat(api, TG_RESIDENT)
    await resident.onboard(topics=())
    (question,) = await resident.send("/propose")
    (question,) = await resident.press(question, "Roads, pavements")
    (card,) = await resident.send("Graffiti on the new bridge")
    await resident.press(card, "Submit")
    await Chat(api, TG_BLOCKER).onboard(topics=())

    api.fail_next("sendMessage", 400, f"Bad Request: chat {TG_RESIDENT} not found")
    api.send_text(TG_RESIDENT, "/help")
    await api.wait_until(lambda: bool(api.webhook_deliveries), what="a webhook post")
    async with aiohttp.ClientSession() as http:
        right = {TG_SECRET_HEADER: TG_WEBHOOK_SECRET, "Content-Type": "application/json"}
        # Cut short; a message with no chat (taken, so Telegram does not repeat it); forged.
        for body, headers, status in (
            (b'{"update_id": 1,', right, 400),
            (json.dumps({"update_id": 5, "message": {"from": {"id": TG_RESIDENT}}}), right, 200),
            (b"{}", {TG_SECRET_HEADER: TG_WEBHOOK_SECRET[::-1]}, 403),
        ):
            async with http.post(webhook, data=body, headers=headers) as response:
                assert response.status == status, body


async def on_messenger(page: Page) -> None:
    """Onboarding and a proposal, then forged, malformed and unverified deliveries."""
    await messenger_onboard(page, PSID)
    resident = page.resident(PSID)
    await resident.says("/propose")
    await resident.taps("Roads, pavements")
    await resident.says("Pothole on Brīvības iela")
    await resident.taps("Submit")
    raw = meta.encode(meta.delivery(meta.text(PSID, "forged")))
    assert (await page.meta.post(raw, signature="sha256=" + "0" * 64))[0] == 403
    assert (await page.meta.post(b"not json"))[0] == 400
    assert (await page.meta.verify("subscribe", "not-the-verify-token", "1234"))[0] == 403
    assert await page.meta.verify("subscribe", VERIFY_TOKEN, "1234") == (200, "1234")


@storage
@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_at_debug_no_line_of_any_logger_holds_a_secret_or_a_residents_platform_id(
    start_bot: RuntimeFactory,
    graph: GraphStandIn,
    database_url: str,
    log_format: str,
    restored_logging: None,
) -> None:
    async with BotApiStandIn(token=TG_TOKEN) as api:
        env = everything_on(api, graph, log_format)
        config = load(None, {**env, "IESAISTE_DATABASE_URL": database_url})
        output = logging_as_iesaiste_run(config)
        assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
        runtime = await start_bot(**env)
        base = f"http://127.0.0.1:{config.http_port}"

        await on_telegram(api, base + TG_WEBHOOK_PATH)
        await on_messenger(Page(runtime, graph, meta.MetaWebhook(base + MESSENGER_PATH)))
        browser = await on_the_web_chat(base)

        # A push to everyone: Telegram's blocker refuses it, and so does Meta the page's token.
        api.block(TG_BLOCKER)
        graph.core.expire_token()
        await push_to_everyone()
        await eventually(
            lambda: Delivery.filter(external_id=str(TG_BLOCKER), state="blocked").exists(),
            timeout=20,
            what="the push to the blocked chat",
        )
        await eventually(lambda: "190" in output.getvalue(), what="Meta refusing the token")
        api.send_text(TG_BLOCKER, "hello?")  # the answer meets the blocked chat too
        await eventually(lambda: "blocked the bot" in output.getvalue(), what="the blocked answer")
        await runtime.stop()

    text = output.getvalue()
    lines = text.splitlines()
    if log_format == "json":
        records = [json.loads(line) for line in lines]  # every line is one object
        assert {"telegram", "messenger", "webchat"} <= {r.get("channel") for r in records}
        assert any("event" in r for r in records)
        messages = [r["message"] for r in records]
        loggers = {r["logger"] for r in records}
    else:
        stamped = [line.split(" ", 4) for line in lines if line[:2] == "20"]
        messages = [parts[4] for parts in stamped]
        loggers = {parts[3].removesuffix(":") for parts in stamped}
    # The libraries' lines come to the same handler (python-telegram-bot's, here).
    assert "telegram.ext.Application" in loggers and "bot.channels.messenger" in loggers
    # It logged what it did, naming the accounts by their tags.
    assert f"telegram: {who('telegram', TG_BLOCKER)} blocked the bot" in messages
    assert any(who("telegram", TG_RESIDENT) in message for message in messages)
    secrets = [TG_TOKEN, TG_TOKEN.partition(":")[2], TG_WEBHOOK_SECRET, COOKIE_SECRET]
    secrets += [graph.token, graph.token.removeprefix("expired-"), APP_SECRET, VERIFY_TOKEN]
    ids = [str(TG_RESIDENT), str(TG_BLOCKER), PSID, *browser]
    for line in lines:
        for value in (*secrets, *ids):
            assert value not in line, f"{value!r} in {line!r}"
