"""Staff compose an announcement in the chat: text per language, an image,
the audience, urgent or not, now or later; a preview with the number of
recipients, then confirm.

The draft is one message (the "draft card") that updates in place as staff
change it; each change is its own step, so the draft survives a restart or
another worker. On confirm, the preview's summary message becomes the
progress report the bot keeps up to date while the announcement goes out
(``bot.progress``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.i18n import LANGUAGE_NAMES, LANGUAGES, N_, Translator
from bot.core.messages import Reply
from bot.core.quiet_hours import next_allowed
from dialogs import menu
from dialogs.audience_steps import add_audience_steps
from dialogs.context import Ctx
from dialogs.engine import Dialog, Step, ask_again, begin, enter
from dialogs.moments import UnreadableTime, parse_local
from dialogs.pickers import BACK, names_of
from storage import announcements, deliveries, media, staff
from storage.announcements import Draft
from storage.models import Announcement

log = logging.getLogger(__name__)

COMPOSERS = frozenset({"communications", "admin"})
APPROVERS = frozenset({"admin"})

dialog = Dialog("ann", roles=COMPOSERS)

SNIPPET = 80  # characters of each text shown on the draft card
FAR_AHEAD = timedelta(days=366)

TIME_PASSED = N_("That time has passed. Please give a time still to come.")
ADMIN_ASKED = N_(
    "Urgent announcement #{id} from {author} waits for an admin's confirmation. "
    "Send /announcements to read it and confirm or decline it."
)
# The push that says so to each admin (rendered by dialogs.pushes); params: author.
ADMIN_ASKED_NOTE = "announcement_admin_asked"


async def go_back(ctx: Ctx, step: Step, notice: str) -> None:
    """Say what is missing, then ask it at its own step, so that its buttons and a typed
    answer work (the draft is kept)."""
    ctx.answer(ctx._(notice))
    await enter(ctx, step)


def actor(ctx: Ctx) -> str:
    """How the audit log and the announcement name a staff account."""
    return f"{ctx.incoming.channel}:{ctx.incoming.user_id}"


async def role(ctx: Ctx) -> str | None:
    """The account's staff role, asked of the database if this update has not yet."""
    if ctx.role is None:
        ctx.role = await staff.role_of(ctx.incoming.channel, ctx.incoming.user_id)
    return ctx.role


async def start(ctx: Ctx) -> None:
    draft = {"texts": {}, "audience": {"kind": "all", "keys": []}, "urgent": False, "at": ""}
    await begin(ctx, text, {**draft, "editing": "lv"})


# --- the draft in the dialog's data ------------------------------------------
def _draft(ctx: Ctx, now: datetime) -> Draft:
    data = ctx.data
    at = data.get("at") or ""
    return Draft(
        texts={k: v for k, v in data.get("texts", {}).items() if v},
        audience=data.get("audience") or {"kind": "all", "keys": []},
        send_at=datetime.fromisoformat(at) if at else now,
        urgent=bool(data.get("urgent")),
        image=data.get("image", ""),
        image_channel=data.get("image_channel", ""),
        image_media=data.get("image_media", ""),
    )


def snippet(value: str) -> str:
    flat = " ".join(value.split())
    return f"«{flat if len(flat) <= SNIPPET else flat[: SNIPPET - 1].rstrip() + '…'}»"


def audience_label(ctx: Ctx, audience: dict[str, Any]) -> str:
    """Everyone / neighbourhoods: … / topics: …, in the staff member's language."""
    m, kind, keys = ctx.config.municipality, audience.get("kind", "all"), audience.get("keys", [])
    if kind == "neighbourhood":
        return ctx._("neighbourhoods: {names}", names=names_of(ctx, m.neighbourhoods, keys))
    if kind == "topic":
        return ctx._("topics: {names}", names=names_of(ctx, m.topics, keys))
    return ctx._("everyone")


def _when_label(ctx: Ctx, at: str) -> str:
    if not at:
        return ctx._("as soon as you confirm")
    return ctx.tr.moment(datetime.fromisoformat(at), ctx.config.municipality.zone)


# --- the draft card --------------------------------------------------------------
async def render_card(ctx: Ctx) -> Reply:
    data = ctx.data
    texts: dict[str, str] = data.get("texts", {})
    lines = [ctx._("New announcement"), ""]
    for code in LANGUAGES:
        name = LANGUAGE_NAMES[code]
        if texts.get(code):
            lines.append(f"{name}: {snippet(texts[code])}")
        elif code != "lv":
            lines.append(ctx._("{language}: none (they get the Latvian text)", language=name))
    lines.append("")
    if data.get("image_media"):
        lines.append(ctx._("Image: attached"))
    elif data.get("image"):
        lines.append(ctx._("Image: attached (residents on the web chat get the text only)"))
    else:
        lines.append(ctx._("Image: none"))
    audience = data.get("audience", {})
    count = await deliveries.count_recipients(audience)
    lines.append(
        ctx.ngettext(
            "Audience: {who} ({count} resident now)",
            "Audience: {who} ({count} residents now)",
            count,
            who=audience_label(ctx, audience),
            count=ctx.tr.number(count),
        )
    )
    lines.append(ctx._("Urgent: yes") if data.get("urgent") else ctx._("Urgent: no"))
    lines.append(ctx._("Goes out: {when}", when=_when_label(ctx, data.get("at", ""))))
    # TRANSLATORS: a button label, at most 20 characters.
    second_row = [card.button(ctx._("Audience"), "audience")]
    if ctx.takes_photos or data.get("image"):  # only where the channel hands photos over
        # TRANSLATORS: a button label, at most 20 characters.
        second_row.insert(0, card.button(ctx._("Image"), "image"))
    if data.get("urgent"):
        # TRANSLATORS: a button label, at most 20 characters.
        urgency = ctx._("Mark not urgent")
    else:
        # TRANSLATORS: a button label, at most 20 characters.
        urgency = ctx._("Mark urgent")
    # TRANSLATORS: a button label, at most 20 characters.
    time = ctx._("Time")
    # TRANSLATORS: a button label, at most 20 characters.
    preview_ = ctx._("Preview and send")
    # TRANSLATORS: a button label, at most 20 characters.
    discard = ctx._("Discard the draft")
    buttons = [
        [card.button(LANGUAGE_NAMES[code], f"text-{code}") for code in LANGUAGES],
        second_row,
        [card.button(urgency, "urgent"), card.button(time, "when")],
        [card.button(preview_, "preview")],
        [card.button(discard, "discard")],
    ]
    return Reply("\n".join(lines), buttons, keep_apart=True)


async def on_card(ctx: Ctx, value: str) -> None:
    if value.startswith("text-") and value[5:] in LANGUAGES:
        ctx.data["editing"] = value[5:]
        await enter(ctx, text)
    elif value == "image":
        await enter(ctx, image)
    elif value == "audience":
        await enter(ctx, audience)
    elif value == "urgent":
        ctx.data["urgent"] = not ctx.data.get("urgent")
        await enter(ctx, card, replace=True)
    elif value == "when":
        await enter(ctx, when)
    elif value == "preview":
        await show_preview(ctx)
    elif value == "discard":
        ctx.answer(ctx._("The draft is discarded; nothing was sent."))
        await menu.show(ctx)
    else:
        await ask_again(ctx, card)


card = dialog.step("card", render_card, on_button=on_card)


# --- texts -----------------------------------------------------------------------
async def render_text(ctx: Ctx) -> Reply:
    code = ctx.data.get("editing", "lv")
    has_text = bool(ctx.data.get("texts", {}).get(code))
    if code == "lv":
        prompt = ctx._(
            "Write the announcement in Latvian, as residents will read it. "
            "Residents whose language has no text of its own get this one."
        )
    else:
        prompt = ctx._(
            "Write the text for residents who chose {language}.",
            language=LANGUAGE_NAMES[code],
        )
    buttons = []
    if has_text and code != "lv":
        # TRANSLATORS: a button label, at most 20 characters.
        buttons.append([text.button(ctx._("Remove this text"), "remove")])
    if ctx.data.get("texts", {}).get("lv"):
        # TRANSLATORS: a button label, at most 20 characters.
        buttons.append([text.button(ctx._("Back"), BACK)])
    hint = ctx._("/cancel stops and discards the draft.")
    return Reply(f"{prompt}\n\n{hint}", buttons)


async def on_text(ctx: Ctx, value: str) -> None:
    code = ctx.data.get("editing", "lv")
    ctx.data.setdefault("texts", {})[code] = value.strip()
    await enter(ctx, card)


async def on_text_button(ctx: Ctx, value: str) -> None:
    code = ctx.data.get("editing", "lv")
    if value == "remove" and code != "lv":
        ctx.data.get("texts", {}).pop(code, None)
    elif value != BACK or not ctx.data.get("texts", {}).get("lv"):
        await ask_again(ctx, text)
        return
    await enter(ctx, card)


text = dialog.step("text", render_text, on_button=on_text_button, on_text=on_text)


# --- image -----------------------------------------------------------------------
async def render_image(ctx: Ctx) -> Reply:
    prompt = ctx._("Send the photo to go with the announcement; it comes with the text.")
    buttons = []
    if ctx.data.get("image"):
        # TRANSLATORS: a button label, at most 20 characters.
        buttons.append([image.button(ctx._("Remove the image"), "remove")])
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([image.button(ctx._("Back"), BACK)])
    return Reply(prompt, buttons)


async def on_photo(ctx: Ctx, file_id: str) -> None:
    # A photo's id is the platform's own: only that platform can show it. A
    # copy kept by us goes to the other channels; without one they get the text.
    # The bytes were fetched before this update's transaction (see Ctx.photo).
    kept = await media.save_image(ctx.photo) if ctx.photo else None
    if ctx.capabilities.resends_photo_ids:
        ctx.data.update(image=file_id, image_channel=ctx.incoming.channel, image_media=kept or "")
    elif not kept:
        await ask_again(ctx, image, N_("The photo did not reach me. Please send it again."))
        return
    else:
        # The id lasts only while this update is handled (a web-chat upload): our copy is
        # the image, by its URL, for every channel.
        ctx.data.update(image=media.url(kept), image_channel="", image_media=kept)
    ctx.answer(ctx._("The image is attached."))
    await enter(ctx, card)


async def on_image_button(ctx: Ctx, value: str) -> None:
    if value == "remove":
        ctx.data.update(image="", image_channel="", image_media="")
    elif value != BACK:
        await ask_again(ctx, image)
        return
    await enter(ctx, card)


async def on_image_text(ctx: Ctx, value: str) -> None:
    await ask_again(ctx, image, N_("Please send a photo, or press Back."))


image = dialog.step(
    "image", render_image, on_button=on_image_button, on_text=on_image_text, on_photo=on_photo
)


# --- audience --------------------------------------------------------------------
WHO = N_("Who should get it?")
audience, pick = add_audience_steps(dialog, WHO, lambda: card)


# --- time ------------------------------------------------------------------------
async def render_when(ctx: Ctx) -> Reply:
    prompt = ctx._(
        "When should it go out? Write a date and time such as 1.12.2026 10:00, "
        "or only a time such as 10:00 (then the next 10:00 to come). Now it is {now}.",
        now=ctx.tr.moment(datetime.now(UTC), ctx.config.municipality.zone),
    )
    # TRANSLATORS: a button label, at most 20 characters.
    at_once = ctx._("As soon as I confirm")
    # TRANSLATORS: a button label, at most 20 characters.
    back = ctx._("Back")
    buttons = [[when.button(at_once, "now"), when.button(back, BACK)]]
    return Reply(prompt, buttons)


async def on_when_button(ctx: Ctx, value: str) -> None:
    if value == "now":
        ctx.data["at"] = ""
    elif value != BACK:
        await ask_again(ctx, when)
        return
    await enter(ctx, card)


async def on_when_text(ctx: Ctx, value: str) -> None:
    now = datetime.now(UTC)
    try:
        moment = parse_local(value, now, ctx.config.municipality.zone)
    except UnreadableTime:
        await ask_again(
            ctx, when, N_("I could not read that time. Please write it like 1.12.2026 10:00.")
        )
        return
    if moment <= now:
        await ask_again(ctx, when, TIME_PASSED)
        return
    if moment - now > FAR_AHEAD:
        await ask_again(
            ctx, when, N_("That is more than a year ahead. Please give an earlier time.")
        )
        return
    ctx.data["at"] = moment.isoformat()
    await enter(ctx, card)


when = dialog.step("when", render_when, on_button=on_when_button, on_text=on_when_text)


# --- preview and confirm ---------------------------------------------------------
async def show_preview(ctx: Ctx) -> None:
    """The announcement as a Latvian-speaking resident will see it, then the summary."""
    now = datetime.now(UTC)
    draft = _draft(ctx, now)
    if not draft.texts.get("lv"):
        ctx.data["editing"] = "lv"
        await go_back(ctx, text, N_("The Latvian text is still missing."))
        return
    if draft.send_at < now - timedelta(minutes=1):
        await go_back(ctx, when, TIME_PASSED)
        return
    if draft.image_channel == ctx.incoming.channel:
        shown = draft.image
    else:
        shown = media.url(draft.image_media) if draft.image_media else ""
    ctx.answer(Reply(draft.texts["lv"], image=shown))
    await enter(ctx, preview)


async def render_preview(ctx: Ctx) -> Reply:
    now = datetime.now(UTC)
    draft = _draft(ctx, now)
    config = ctx.config
    count = await deliveries.count_recipients(draft.audience)
    lines = [
        ctx.ngettext(
            "Above is how it looks. Audience: {who} — {count} resident now. Each gets the "
            "text in their language if you wrote one, otherwise the Latvian text.",
            "Above is how it looks. Audience: {who} — {count} residents now. Each gets the "
            "text in their language if you wrote one, otherwise the Latvian text.",
            count,
            who=audience_label(ctx, draft.audience),
            count=ctx.tr.number(count),
        )
    ]
    if count == 0:
        lines.append(ctx._("Nobody matches this audience yet."))
    lines.append(ctx._("Goes out: {when}", when=_when_label(ctx, ctx.data.get("at", ""))))
    quiet = config.delivery
    zone = config.municipality.zone
    admin = await role(ctx) == "admin"
    if draft.urgent:
        lines.append(ctx._("Urgent: it goes out even during quiet hours."))
        if not admin:
            lines.append(ctx._("An admin must confirm it first; admins will be told."))
    else:
        allowed = next_allowed(max(draft.send_at, now), zone, quiet.quiet_start, quiet.quiet_end)
        if allowed > max(draft.send_at, now):
            lines.append(
                ctx._(
                    "That is within quiet hours, so it will go out at {moment}.",
                    moment=ctx.tr.moment(allowed, zone),
                )
            )
    if draft.urgent and not admin:
        # TRANSLATORS: a button label, at most 20 characters: sends an urgent announcement
        # to the admins, one of whom confirms it before it goes out.
        send_label = ctx._("Send for approval")
    else:
        # TRANSLATORS: a button label, at most 20 characters.
        send_label = ctx._("Send")
    # TRANSLATORS: a button label, at most 20 characters.
    edit = ctx._("Edit")
    # TRANSLATORS: a button label, at most 20 characters.
    discard = ctx._("Discard the draft")
    buttons = [
        [preview.button(send_label, "send")],
        [preview.button(edit, "edit"), preview.button(discard, "discard")],
    ]
    return Reply("\n".join(lines), buttons)


async def on_preview(ctx: Ctx, value: str) -> None:
    if value == "edit":
        await enter(ctx, card)
    elif value == "discard":
        ctx.answer(ctx._("The draft is discarded; nothing was sent."))
        await menu.show(ctx)
    elif value == "send":
        await send(ctx)
    else:
        await ask_again(ctx, preview)


async def send(ctx: Ctx) -> None:
    now = datetime.now(UTC)
    draft = _draft(ctx, now)
    if draft.send_at < now - timedelta(minutes=1):
        await go_back(ctx, when, TIME_PASSED)
        return
    me = actor(ctx)
    report = {
        "channel": ctx.incoming.channel,
        "chat": ctx.incoming.user_id,
        "message": ctx.incoming.message_id,
        "language": ctx.language,
    }
    approved_by = me if draft.urgent and await role(ctx) == "admin" else ""
    created = await announcements.schedule(draft, author=me, approved_by=approved_by, report=report)
    told = 0
    if created.state == "pending":
        admins = [
            a
            for a in await announcements.admin_accounts()
            if a != (ctx.incoming.channel, ctx.incoming.user_id)
        ]
        told = await announcements.notify(admins, created.id, ADMIN_ASKED_NOTE, author=me)
    ctx.clear_state()
    ctx.answer(Reply(status_text(ctx.tr, created, ctx.config.municipality.zone), replace=True))
    if created.state == "pending" and not told:
        ctx.answer(
            ctx._(
                "No admin could be told: none has written to the bot yet. Ask an admin "
                "to send /announcements to confirm it."
            )
        )


def status_text(tr: Translator, row: Announcement, zone: ZoneInfo) -> str:
    """What the report says before the announcement is released."""
    if row.state == "pending":
        return tr.gettext(
            "Announcement #{id} waits for an admin's confirmation, as it is urgent. "
            "Admins have been told; /announcements shows it.",
            id=row.id,
        )
    if row.state == "cancelled":
        return tr.gettext("Announcement #{id} is cancelled; nobody got it.", id=row.id)
    if row.send_at > datetime.now(UTC) + timedelta(seconds=30):
        return tr.gettext(
            "Announcement #{id} is scheduled for {moment}. In /announcements you can see it "
            "and cancel it. This message will show how it goes out.",
            id=row.id,
            moment=tr.moment(row.send_at, zone),
        )
    return tr.gettext(
        "Announcement #{id} is going out now. This message will show how it goes.", id=row.id
    )


def progress_text(tr: Translator, row: Announcement, counts: dict[str, int], finished: bool) -> str:
    """The figures of an announcement going out, for the report message and the list."""
    if row.state == "cancelled":
        head = tr.gettext("Announcement #{id} was stopped by staff.", id=row.id)
    elif finished:
        head = tr.ngettext(
            "Announcement #{id} has gone out to {count} resident.",
            "Announcement #{id} has gone out to {count} residents.",
            row.recipients,
            id=row.id,
            count=tr.number(row.recipients),
        )
    else:
        head = tr.ngettext(
            "Announcement #{id} is going out to {count} resident.",
            "Announcement #{id} is going out to {count} residents.",
            row.recipients,
            id=row.id,
            count=tr.number(row.recipients),
        )
    lines = [
        head,
        tr.gettext("Sent: {n}", n=tr.number(counts.get("sent", 0))),
        tr.gettext("Queued: {n}", n=tr.number(counts.get("queued", 0) + counts.get("sending", 0))),
        tr.gettext(
            "Waiting until the resident writes to the bot: {n}",
            n=tr.number(counts.get("waiting", 0)),
        ),
        *(
            [
                tr.gettext(
                    "… of them on Messenger, which allows no message until they write: {n}",
                    n=tr.number(counts["waiting:messenger"]),
                )
            ]
            if counts.get("waiting:messenger")
            else []
        ),
        tr.gettext("Failed: {n}", n=tr.number(counts.get("failed", 0))),
        tr.gettext("Blocked the bot: {n}", n=tr.number(counts.get("blocked", 0))),
    ]
    if counts.get("cancelled"):
        lines.append(tr.gettext("Stopped before sending: {n}", n=tr.number(counts["cancelled"])))
    return "\n".join(lines)


preview = dialog.step("preview", render_preview, on_button=on_preview)
