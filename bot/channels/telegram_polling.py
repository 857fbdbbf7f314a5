"""Long polling that confirms an update only once it is handled.

python-telegram-bot's own ``Updater`` confirms each batch (by asking for the next
offset) as soon as it has fetched it, before the handlers ran: a worker that stops,
or a database that is away, then loses the updates in hand. Here a batch is fetched,
handled, and only then confirmed by the next ``getUpdates``. An update that could
not be handled now (``take`` says to try again: the database is away) is not
confirmed: after a pause the same offset is asked for again, so Telegram hands it
over again, with those after it, which the processed-event record makes harmless.

A batch's updates are handled side by side, started in arrival order (the
dispatcher's per-resident lock keeps one resident's in order). Telegram hands a
chat's next update only after the bot had the previous one, so one slow update (a
photo being fetched) holds the next batch for that long: polling is for small
deployments and for trying the bot; a busy one uses the webhook.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from telegram import Bot
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

log = logging.getLogger(__name__)

POLL_SECONDS = 10  # Telegram holds a getUpdates this long when nothing is waiting
# After a fault, this long before the next try, doubled up to the last.
PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0)

Take = Callable[[dict[str, Any]], Awaitable[bool]]
"""``take(update)``: handle one update (its JSON as Telegram sent it); True when it could
not be handled now and must be asked for again."""


async def poll(
    bot: Bot, take: Take, allowed_updates: Sequence[str], stopping: asyncio.Event
) -> None:
    """Fetch, handle and confirm batches until ``stopping`` is set; the batch in hand is
    finished first, so nothing fetched is dropped by a stop."""
    offset: int | None = None
    faults = 0
    while not stopping.is_set():
        fetching = asyncio.ensure_future(_get_updates(bot, offset, allowed_updates))
        stop = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({fetching, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not fetching.done():
            fetching.cancel()  # a long poll is dropped at a stop: Telegram keeps its updates
            await asyncio.gather(fetching, return_exceptions=True)
            break
        try:
            batch = fetching.result()
        except RetryAfter as error:
            await _pause(stopping, retry_seconds(error))
            continue
        except InvalidToken:
            log.error("telegram: the bot token was refused; polling stops")
            return
        except Conflict:
            log.warning(
                "telegram: another getUpdates or a webhook holds this bot's updates "
                '(a second worker polling? set telegram.mode = "webhook" for several)'
            )
            faults += 1
        except (NetworkError, TelegramError, TimeoutError, OSError) as error:
            log.warning("telegram: getUpdates failed (%s); trying again", error)
            faults += 1
        except Exception:  # a fault of ours must not end polling for good
            log.exception("telegram: getUpdates failed")
            faults += 1
        else:
            faults = 0
            if not batch:
                continue
            retry = await _handle(batch, take)
            ids = [int(update["update_id"]) for update in batch]
            if any(retry):
                # Asked for again from the first unhandled one, after a pause.
                offset = min(i for i, again in zip(ids, retry, strict=True) if again)
                log.info("telegram: %d updates are kept to be handled again", sum(retry))
                await _pause(stopping, PAUSES[1])
            else:
                offset = max(ids) + 1
            continue
        await _pause(stopping, PAUSES[min(faults, len(PAUSES)) - 1])
    if offset is not None:
        # Confirm what was handled, so a restart does not fetch it again.
        try:
            await _get_updates(bot, offset, allowed_updates, hold=0, limit=1)
        except (TelegramError, OSError) as error:
            log.info("telegram: the last batch was not confirmed at stop (%s)", error)


async def _get_updates(
    bot: Bot,
    offset: int | None,
    allowed_updates: Sequence[str],
    *,
    hold: int = POLL_SECONDS,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The updates as Telegram's JSON: each is checked and read one by one by the channel,
    so one PTB cannot read does not block the rest (PTB's ``get_updates`` would raise for
    the whole batch, for ever)."""
    kwargs: dict[str, Any] = {"timeout": hold, "limit": limit}
    kwargs["allowed_updates"] = list(allowed_updates)
    if offset is not None:
        kwargs["offset"] = offset
    with warnings.catch_warnings():
        # PTB suggests its get_updates, which reads the batch as a whole.
        warnings.simplefilter("ignore", PTBUserWarning)
        result = await bot.do_api_request("getUpdates", api_kwargs=kwargs, read_timeout=hold + 10.0)
    if not isinstance(result, list):
        raise NetworkError("getUpdates did not answer a list")
    return [u for u in result if isinstance(u, dict) and isinstance(u.get("update_id"), int)]


async def _handle(batch: list[dict[str, Any]], take: Take) -> list[bool]:
    # Tasks start in creation order: each resident's lock is queued for in arrival order.
    tasks = [asyncio.ensure_future(take(update)) for update in batch]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    # ``take`` logs its own failures; one that escapes is confirmed rather than repeated
    # for ever (only a passing fault is worth another try).
    return [result is True for result in results]


def retry_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():
        # PTB 22 warns that retry_after will become a timedelta; we take both.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        retry = error.retry_after
    return float(retry) if isinstance(retry, int | float) else retry.total_seconds()


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        pass
