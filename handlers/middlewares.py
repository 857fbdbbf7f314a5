"""The checks every update passes before it is routed.

Each is a plain function of the context; ``handlers.dispatcher`` calls them
in the order that matters and says why there.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

from bot.core.i18n import LANGUAGES, translator
from bot.core.logs import who
from bot.core.messages import Incoming, Kind
from dialogs.context import Ctx
from handlers.router import Route
from storage import deliveries, residents, staff
from storage.models import Resident

log = logging.getLogger(__name__)


def resident_language(incoming: Incoming, chosen: str, default: str) -> str:
    """The resident's choice, else what their app says, else the municipality's default."""
    if chosen in LANGUAGES:
        return chosen
    platform = incoming.locale.split("-")[0].lower()
    return platform if platform in LANGUAGES else default


def apply_language(ctx: Ctx) -> None:
    ctx.tr = translator(
        resident_language(
            ctx.incoming, ctx.resident.language, ctx.config.municipality.default_language
        )
    )


async def allowed(ctx: Ctx, route: Route) -> bool:
    """Whether this account may take the route; the role is looked up only for staff routes."""
    return await has_role(ctx, route.roles)


async def has_role(ctx: Ctx, roles: frozenset[str] | None) -> bool:
    """Whether this account holds one of ``roles`` (None: anyone), asked of the database."""
    if roles is None:
        return True
    ctx.role = await staff.role_of(ctx.incoming.channel, ctx.incoming.user_id)
    return ctx.role in roles


async def note_window(ctx: Ctx) -> None:
    """The resident wrote: a channel whose pushes must come within a window of their last
    message (Messenger) stamps the event, and the window opens again from it."""
    sent_at = ctx.incoming.sent_at
    if sent_at is not None and ctx.incoming.kind is not Kind.OPEN:
        await residents.note_inbound(ctx.incoming.channel, ctx.incoming.user_id, sent_at)


async def catch_up(ctx: Ctx) -> None:
    """The resident is here: pushes held for them go now, as a short catch-up."""
    if ctx.resident.pushes_held:
        await deliveries.resident_returned(ctx.resident, ctx.incoming.channel, ctx.incoming.user_id)


def throttled(ctx: Ctx) -> bool:
    """Count the message; True when the resident is over the limit.

    The first message over it is answered, saying how long to wait; later ones are dropped
    quietly (answering each would feed a flood). Opening the chat (a new tab) is not a
    message and is not counted, but while the resident is over the limit it is answered
    with the same sentence, so a new tab never stays empty without a word of why.
    """
    limits = ctx.config.limits
    if ctx.incoming.kind is Kind.OPEN:
        wait = _throttle_wait(ctx.resident, limits.throttle_messages, limits.throttle_seconds)
        if wait:
            _slow_down(ctx, wait)
        return bool(wait)
    verdict = residents.count_message(
        ctx.resident, limit=limits.throttle_messages, window_seconds=limits.throttle_seconds
    )
    if verdict == "warn":
        _slow_down(
            ctx, _throttle_wait(ctx.resident, limits.throttle_messages, limits.throttle_seconds)
        )
        log.info("throttled %s", who(ctx.incoming.channel, ctx.incoming.user_id))
    return verdict != "ok"


def _throttle_wait(resident: Resident, limit: int, window_seconds: int) -> int:
    """Seconds until the throttle window ends when the resident is over the limit, else 0."""
    start = resident.throttle_window_start
    if start is None or resident.throttle_count <= limit:
        return 0
    left = (start + timedelta(seconds=window_seconds) - datetime.now(UTC)).total_seconds()
    return max(0, math.ceil(left))


def _slow_down(ctx: Ctx, seconds: int) -> None:
    ctx.answer(
        ctx.ngettext(
            "You are sending messages faster than I can read them. "
            "Please wait {n} second, then carry on.",
            "You are sending messages faster than I can read them. "
            "Please wait {n} seconds, then carry on.",
            max(1, seconds),
        )
    )


def rejected_input(ctx: Ctx) -> bool:
    """Refuse empty or overlong text with an answer the resident understands."""
    incoming = ctx.incoming
    if incoming.kind is not Kind.TEXT:
        return False
    text = incoming.text
    if not text.strip():
        ctx.answer(ctx._("Your message was empty. Please write something or use the buttons."))
        return True
    limit = ctx.config.limits.max_text_length
    if len(text) > limit:
        ctx.answer(
            ctx.ngettext(
                "Your message is too long: I can read at most {n} character. Please shorten it.",
                "Your message is too long: I can read at most {n} characters. Please shorten it.",
                limit,
            )
        )
        return True
    return False
