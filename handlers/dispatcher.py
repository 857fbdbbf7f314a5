"""From one neutral update to the replies: the middleware onion, then routing.

Order, outermost first, and why:
1. errors — whatever fails below, the resident gets a plain apology in their
   own language, never a stack trace, and the transaction is rolled back
   (nothing half-saved); when the fault is the database being away, the
   outcome says to try the update again (``Outcome.retry``: the channel has it
   delivered again) and the apology says it is kept, once a minute at most;
   opening the chat with no resident row yet gets the first question and
   creates nobody;
2. a per-resident in-process lock — keeps one resident's updates in arrival
   order inside this worker before any await can reorder them; then the photo
   of a photo update, if the resident's current step takes one, is fetched from
   its channel: before the transaction, so a download of up to 10 MB never holds
   a database connection and the resident's row lock (see ``_prefetch_photo``);
3. the session (storage) — one transaction: the resident is found or created
   and their row locked (across workers on PostgreSQL), then the event id is
   recorded, so a duplicate delivery stops here with no effect;
4. language — needed by every answer below, including the throttle's;
5. throttle — counts messages (opening the chat is none) before any work is
   done for a flooding resident;
6. input checks, then routing; a route that needs a staff role loads the
   role of this account then and checks it on the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.core import metrics
from bot.core.channel import Once
from bot.core.config import Config
from bot.core.i18n import N_, translator
from bot.core.logs import about, who
from bot.core.messages import (
    DATABASE_AWAY,
    Capabilities,
    FileSource,
    Incoming,
    Kind,
    Outcome,
    Reply,
)
from dialogs import menu, onboarding, proposal_submit
from dialogs.context import Ctx
from dialogs.engine import EXPIRED, handle
from dialogs.pickers import match_language
from dialogs.registry import REGISTRY
from handlers import middlewares
from handlers.commands import resume_or_menu
from handlers.commands import router as default_router
from handlers.router import Router
from storage import media
from storage.errors import DuplicateEvent, unavailable
from storage.models import DialogState, Resident
from storage.sessions import Session, current_state, known_language, open_session

log = logging.getLogger(__name__)

UNKNOWN_COMMAND = N_("Sorry, I do not know that command. /help lists what I can do.")
DID_NOT_UNDERSTAND = N_("Sorry, I did not understand that. Please use the menu below.")
FAILED = N_(
    "Sorry, something went wrong on our side. Please try again in a moment; "
    "what you chose before is saved."
)
PHOTO_MAX_BYTES = media.MAX_BYTES  # what we keep at most (storage.media)
# A photo the platform does not hand over by then is taken as not handed over.
PHOTO_FETCH_SECONDS = 30.0


def _answers_first_question(incoming: Incoming) -> bool:
    if incoming.kind is Kind.BUTTON:
        return incoming.payload.startswith(onboarding.language.state + ":")
    return incoming.kind is Kind.TEXT and match_language(incoming.text) is not None


@dataclass(slots=True)
class _Held:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass(slots=True)
class Dispatcher:
    config: Config
    router: Router = field(default_factory=lambda: default_router)
    # Channels that can hand over a file a resident sent; filled in by the runtime.
    files: dict[str, FileSource] = field(default_factory=dict)
    # What each channel can do (edit, buttons, labels…), registered by the runtime; a
    # channel not registered (a test) gets the defaults of ``Capabilities``.
    capabilities: dict[str, Capabilities] = field(default_factory=dict)
    _locks: dict[str, _Held] = field(default_factory=dict)
    # Who was told of a database outage in the last minute.
    _apologised: Once = field(default_factory=Once)

    async def feed(self, incoming: Incoming) -> Outcome:
        """Handle one update; return what to answer (nothing for a duplicate)."""
        # Whatever is logged meanwhile (an exception's text too) names the account by its tag.
        with (
            about(incoming.channel, incoming.user_id, incoming.event_id),
            metrics.answering(incoming.channel),
        ):
            return await self._feed(incoming)

    async def _feed(self, incoming: Incoming) -> Outcome:
        try:
            if (
                incoming.kind is Kind.OPEN
                and await known_language(incoming.channel, incoming.user_id) is None
            ):
                return await self._greet(incoming)
            async with self._resident_lock(f"{incoming.channel}:{incoming.user_id}"):
                photo = await self._prefetch_photo(incoming)
                async with open_session(
                    incoming.channel, incoming.user_id, incoming.event_id
                ) as session:
                    ctx = self._context(incoming, session, photo)
                    await self._handle(ctx)
                return Outcome(ctx.replies, ctx.language, forgotten=session.deleted)
        except DuplicateEvent:
            log.info("duplicate event %s:%s dropped", incoming.channel, incoming.event_id)
            return Outcome([], await self._fallback_language(incoming))
        except Exception as error:
            metrics.UPDATES_FAILED.labels(incoming.channel).inc()
            if unavailable(error):
                metrics.DATABASE_ERRORS.labels("dispatcher").inc()
                return await self._not_now(incoming, error)
            log.exception(
                "update %s:%s of %s failed",
                incoming.channel,
                incoming.event_id,
                who(incoming.channel, incoming.user_id),
            )
            language = await self._fallback_language(incoming)
            return Outcome([Reply(translator(language).gettext(FAILED))], language)

    async def _not_now(self, incoming: Incoming, error: Exception) -> Outcome:
        """The database is away: nothing was saved, so the update is to be handled again
        (``retry``); the resident hears why, once a minute at most, not at every
        redelivery."""
        log.warning(
            "update %s:%s of %s not handled now: the database is unavailable (%s)",
            incoming.channel,
            incoming.event_id,
            who(incoming.channel, incoming.user_id),
            type(error).__name__,
        )
        language = await self._fallback_language(incoming)
        if not self._apologised.due(f"{incoming.channel}:{incoming.user_id}"):
            return Outcome([], language, retry=True)
        apology = Reply(translator(language).gettext(DATABASE_AWAY))
        return Outcome([apology], language, retry=True)

    async def _greet(self, incoming: Incoming) -> Outcome:
        """Somebody with no resident row opened the chat: the first question, and nobody is
        created (nor anything written) until they answer it."""
        session = Session(Resident(), DialogState(), is_new=True)
        ctx = self._context(incoming, session)
        middlewares.apply_language(ctx)
        await onboarding.start(ctx)
        return Outcome(ctx.replies, ctx.language)

    def _context(self, incoming: Incoming, session: Session, photo: bytes | None = None) -> Ctx:
        capabilities = self.capabilities.get(incoming.channel) or Capabilities()
        return Ctx(
            incoming,
            session,
            self.config,
            translator("lv"),
            files=self.files,
            capabilities=capabilities,
            photo=photo,
        )

    async def _fallback_language(self, incoming: Incoming) -> str:
        """The resident's own language when the database still tells it, else what their app
        says, else the municipality's."""
        try:
            chosen = await known_language(incoming.channel, incoming.user_id) or ""
        except Exception as error:  # the failure above may be the database itself
            metrics.DATABASE_ERRORS.labels("dispatcher").inc()
            log.warning("the resident's language could not be looked up (%s)", type(error).__name__)
            chosen = ""
        return middlewares.resident_language(
            incoming, chosen, self.config.municipality.default_language
        )

    async def _prefetch_photo(self, incoming: Incoming) -> bytes | None:
        """The bytes of the photo a photo update carries, or None.

        Fetched here, after the in-process lock and before the session, so the step
        that takes it has the bytes at hand and keeps them in its own transaction
        (a proposal's photos, one update each, will too). After the commit would
        split every such step in two: the state saved first, the copy added by a
        second transaction, or lost if the worker stops in between. Only when the
        resident's current step takes a photo, read with no lock: a photo sent at
        any other moment costs one small read, not a download. Bounded by size
        (what we keep) and by time. Another worker may move the step on meanwhile;
        the step then gets None, as for a photo the platform would not hand over.
        """
        source = self.files.get(incoming.channel)
        if incoming.kind is not Kind.PHOTO or not incoming.photo_id or source is None:
            return None
        state = await current_state(incoming.channel, incoming.user_id)
        step = REGISTRY.step(state) if state else None
        # A photo with a caption while no question is open starts a proposal with it.
        starts_proposal = not state and bool(incoming.text)
        if not starts_proposal and (step is None or step.on_photo is None):
            return None
        try:
            async with asyncio.timeout(PHOTO_FETCH_SECONDS):
                return await source.fetch(incoming.photo_id, PHOTO_MAX_BYTES)
        except TimeoutError:
            log.warning("photo not fetched: no answer within %g s", PHOTO_FETCH_SECONDS)
        except Exception as error:  # the platform did not hand it over now
            log.warning("photo not fetched: %s", error)
        return None

    @asynccontextmanager
    async def _resident_lock(self, key: str) -> AsyncIterator[None]:
        held = self._locks.setdefault(key, _Held())
        held.users += 1
        try:
            async with held.lock:
                yield
        finally:
            held.users -= 1
            if held.users == 0:
                del self._locks[key]

    async def _handle(self, ctx: Ctx) -> None:
        if ctx.session.is_new and _answers_first_question(ctx.incoming):
            # The web chat shows the first question on opening, creating nobody: a newcomer's
            # first press (or typed language) answers it.
            ctx.set_state(onboarding.language.state)
        middlewares.apply_language(ctx)
        await middlewares.note_window(ctx)
        await middlewares.catch_up(ctx)
        if middlewares.throttled(ctx):
            return
        if middlewares.rejected_input(ctx):
            await resume_or_menu(ctx)
            return
        await self._route(ctx)

    async def _route(self, ctx: Ctx) -> None:
        incoming = ctx.incoming
        if incoming.kind is Kind.OPEN:
            await resume_or_menu(ctx)
            return
        if incoming.kind is Kind.COMMAND:
            route = self.router.find_command(incoming.command)
            if route is None or not await middlewares.allowed(ctx, route):
                if route is not None:
                    log.warning(
                        "staff command /%s refused to %s",
                        incoming.command,
                        who(incoming.channel, incoming.user_id),
                    )
                ctx.answer(ctx._(UNKNOWN_COMMAND))
                await resume_or_menu(ctx)
            elif ctx.onboarded or route.anytime:
                await route.handler(ctx)
            else:
                await resume_or_menu(ctx)
            return
        if incoming.kind is Kind.BUTTON:
            route = self.router.find_button(incoming.payload)
            if route is not None and not await middlewares.allowed(ctx, route):
                log.warning(
                    "staff button %r refused to %s",
                    incoming.payload,
                    who(incoming.channel, incoming.user_id),
                )
                ctx.answer(ctx._(UNKNOWN_COMMAND))
                await resume_or_menu(ctx)
                return
            if route is not None and (ctx.onboarded or route.anytime):
                await route.handler(ctx)
                return
        dialog = REGISTRY.target(ctx.state, incoming)
        if dialog is not None and dialog.roles is not None:
            # A staff dialog: checked on every update, not only on entry.
            if not await middlewares.has_role(ctx, dialog.roles):
                log.warning(
                    "staff dialog %s refused to %s",
                    dialog.name,
                    who(incoming.channel, incoming.user_id),
                )
                if REGISTRY.dialog(ctx.state) is dialog:
                    ctx.clear_state()
                ctx.answer(ctx._(UNKNOWN_COMMAND))
                await resume_or_menu(ctx)
                return
        elif not ctx.onboarded and not ctx.state.startswith(onboarding.dialog.name + ":"):
            await onboarding.start(ctx)
            return
        # Proposals (dialogs.proposal_submit): a photo with a caption while no question is
        # open starts one; a shared location answers its card or place step.
        if incoming.kind is Kind.PHOTO and incoming.text and not ctx.state and ctx.onboarded:
            await proposal_submit.start_from_photo(ctx)
            return
        if incoming.kind is Kind.LOCATION and proposal_submit.takes_location(ctx.state):
            await proposal_submit.on_location(ctx)
            return
        if await handle(ctx, REGISTRY, on_lost=resume_or_menu):
            return
        if incoming.kind is Kind.BUTTON:
            ctx.answer(ctx._(EXPIRED))
        else:
            ctx.answer(ctx._(DID_NOT_UNDERSTAND))
        await menu.show(ctx)
