"""Headless Chromium for the web chat's end-to-end tests, and a reader for its page.

Debian's Chromium drives the page through Playwright's async API, in the test's
own event loop, so the bot and the browser share it. ``playwright install`` is
never needed: the system browser at ``/usr/bin/chromium`` is used.

Without Playwright or Chromium a test skips with a message saying which is
missing, except under CI=true, where it fails (``tests.conftest.missing``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.conftest import missing

try:
    from playwright.async_api import async_playwright, expect
except ImportError:  # the skip (or the CI failure) comes from require_chromium()
    async_playwright = None  # type: ignore[assignment]
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.async_api import Browser, Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# The page's own test hooks (bot/channels/webchat_static/index.html, chat.js).
LOG, INPUT, SEND, STATUS, TITLE = "log", "input", "send", "status", "title"


def require_chromium() -> None:
    """Skip (or fail in CI) when Playwright or the system Chromium is not there."""
    if async_playwright is None:
        missing("Playwright's Python package is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A freshly launched headless Chromium, closed on exit."""
    require_chromium()
    assert async_playwright is not None
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


class ChatPage:
    """The chat page as a resident sees it: the log, the messages, the composer."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.log = page.get_by_test_id(LOG)
        self.input = page.get_by_test_id(INPUT)
        self.send_button = page.get_by_test_id(SEND)
        self.status = page.get_by_test_id(STATUS)
        self.title = page.get_by_test_id(TITLE)
        self.bot = self.log.locator('[data-role="bot"]')
        self.user = self.log.locator('[data-role="user"]')
        self.errors = self.log.locator('[data-role="error"]')

    @classmethod
    async def open(cls, page: Page, url: str, first_words: str = "") -> ChatPage:
        """Load the page and wait for the bot's first message (containing ``first_words``)."""
        chat = cls(page)
        await page.goto(url)
        assert expect is not None
        await expect(chat.bot.first).to_contain_text(first_words)
        return chat

    @staticmethod
    def text(message: Locator) -> Locator:
        """The text of a bot message, without its buttons."""
        return message.locator(".bubble > .text")

    async def expect_text(self, message: Locator, text: str) -> None:
        """Wait until ``message`` says ``text``, then check it exactly, line breaks and all.

        Playwright compares strings with whitespace collapsed, so a notice joined to a
        question by a blank line would pass as joined by a space: hence the second check.
        """
        assert expect is not None
        paragraph = self.text(message)
        await expect(paragraph).to_have_text(text)
        assert await paragraph.text_content() == text

    @staticmethod
    async def buttons(message: Locator) -> list[tuple[str, str]]:
        """The (label, payload) of every button on a bot message, in order."""
        pairs = await message.locator("button.choice").evaluate_all(
            "(buttons) => buttons.map((b) => [b.textContent, b.dataset.payload])"
        )
        return [(label, payload) for label, payload in pairs]

    async def expect_asks_again(
        self, repeated: Locator, original: Locator, notice: str = ""
    ) -> None:
        """``repeated`` is ``original`` asked again, as a new message with the same buttons.

        With a ``notice`` (why the answer did not fit), the notice and the question come as
        one message: the notice, a blank line, then the question.
        """
        question = await self.text(original).text_content() or ""
        await self.expect_text(repeated, f"{notice}\n\n{question}" if notice else question)
        assert await repeated.get_attribute("data-message-id") != await original.get_attribute(
            "data-message-id"
        )
        assert await self.buttons(repeated) == await self.buttons(original)

    async def expect_notice_then_question(self, original: Locator, notice: str) -> None:
        """The notice alone, then ``original`` asked again: how a question that is edited
        in place (the topics) is asked again, so that a toggle cannot wipe the notice out."""
        await self.expect_text(self.bot.nth(-2), notice)
        assert await self.buttons(self.bot.nth(-2)) == []
        await self.expect_asks_again(self.bot.last, original)

    def button(self, label: str, message: Locator | None = None) -> Locator:
        """The button labelled exactly ``label`` on a message, the latest one by default."""
        return (message or self.bot.last).get_by_role("button", name=label, exact=True)

    async def press(self, label: str, message: Locator | None = None) -> None:
        await self.button(label, message).click()

    async def say(self, text: str) -> None:
        """Type into the box and press Enter, as a resident does."""
        await self.input.fill(text)
        await self.input.press("Enter")

    async def html_lang(self) -> str:
        return str(await self.page.evaluate("document.documentElement.lang"))

    async def open_probe_socket(self) -> None:
        """A second WebSocket to /ws from the page's own JS (same origin, same cookie).

        Its frames collect in ``window.__probe.frames``; ``probe_send`` sends raw text
        on it, so a test can send what the page itself would never send.
        """
        await self.page.evaluate(
            """() => new Promise((resolve, reject) => {
                const ws = new WebSocket(`ws://${location.host}/ws`);
                window.__probe = { ws, frames: [], closed: null };
                ws.onmessage = (event) => window.__probe.frames.push(JSON.parse(event.data));
                ws.onclose = (event) => { window.__probe.closed = event.code; };
                ws.onopen = () => resolve();
                ws.onerror = () => reject(new Error("the probe WebSocket failed"));
            })"""
        )

    async def probe_send(self, raw: str) -> None:
        await self.page.evaluate("(raw) => window.__probe.ws.send(raw)", raw)

    async def probe_frames(self, kind: str) -> list[dict[str, Any]]:
        frames = await self.page.evaluate(
            "(kind) => window.__probe.frames.filter((f) => f.type === kind)", kind
        )
        return list(frames)

    async def wait_for_probe_frames(self, kind: str, count: int) -> list[dict[str, Any]]:
        """Wait until the probe socket has received ``count`` frames of type ``kind``."""
        await self.page.wait_for_function(
            "([kind, count]) => window.__probe.frames.filter((f) => f.type === kind).length"
            " >= count",
            arg=[kind, count],
        )
        return await self.probe_frames(kind)
