"""A resident submits an idea or reports a problem: category, text, then a summary card.

The card offers a place (a shared location or a typed address), photos, the text and
the neighbourhood to change, Submit and Cancel, so a report with neither place nor
photo takes one message and two taps. Before the proposal is created, open proposals
like it (close by, or reading alike) are offered: "This is the same" follows one and
adds the resident's support in one tap, and nothing new is created. The draft lives
in the dialog's data (JSON in the database); photos are kept as files at once and the
draft holds only their keys, so it survives a restart.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.core.geo import neighbourhood_at, valid_point
from bot.core.i18n import N_
from bot.core.messages import Button, Reply
from dialogs import menu
from dialogs.context import Ctx
from dialogs.engine import Dialog, Step, ask_again, begin, enter
from dialogs.pickers import BACK, DONE, choice_buttons, find, match_named, neighbourhood_line
from dialogs.proposal_words import category_name, snippet, summary_line
from storage import photos, proposals, residents, similar
from storage.proposal_states import OPEN

log = logging.getLogger(__name__)

dialog = Dialog("prop")

CANCEL = "_cancel"
MAX_ADDRESS = 256  # characters of a typed address (the column's size)

CANCELLED = N_("The draft is discarded; nothing was submitted.")
PHOTO_TOO_LARGE = N_("That photo is larger than 10 MB. Please send a smaller one.")
PHOTO_NOT_IMAGE = N_("That file is not a photo I can read. Please send a JPEG or PNG picture.")
PHOTO_NOT_RECEIVED = N_("The photo did not reach me. Please send it again.")
OUTSIDE = N_(
    "That place is outside {municipality}. Please share a place within it, or type the address."
)
ADDRESS_TOO_LONG = N_("The address is too long: at most {n} characters. Please shorten it.")
UNKNOWN_CATEGORY = N_("Please choose one of the categories below.")


# --- the draft in the dialog's data ---------------------------------------------------
def _photos(ctx: Ctx) -> list[dict[str, Any]]:
    return list(ctx.data.get("photos", []))


async def _over_daily_limit(ctx: Ctx) -> bool:
    """Says so politely when the resident has submitted as many as a day allows."""
    limit = ctx.config.proposals.daily_limit
    if limit and await proposals.submitted_today(ctx.resident) >= limit:
        ctx.answer(
            ctx.ngettext(
                "You have submitted {n} proposal in the last 24 hours, as many as one "
                "resident may. Thank you for your care! Please submit the next one tomorrow.",
                "You have submitted {n} proposals in the last 24 hours, as many as one "
                "resident may. Thank you for your care! Please submit the next one tomorrow.",
                limit,
            )
        )
        return True
    return False


async def _new_draft(ctx: Ctx) -> dict[str, Any]:
    hood = await residents.neighbourhood_key(ctx.resident)
    return {"category": "", "text": "", "neighbourhood": hood or "", "photos": []}


async def start(ctx: Ctx) -> None:
    """From the menu or /propose: the category first."""
    if await _over_daily_limit(ctx):
        await menu.show(ctx)
        return
    await begin(ctx, category, await _new_draft(ctx))


async def start_from_photo(ctx: Ctx) -> None:
    """A photo with a caption while no question is open: a report with both filled in."""
    caption = ctx.incoming.text.strip()
    limit = ctx.config.limits.max_text_length
    if len(caption) > limit:
        ctx.answer(
            ctx.ngettext(
                "Your message is too long: I can read at most {n} character. Please shorten it.",
                "Your message is too long: I can read at most {n} characters. Please shorten it.",
                limit,
            )
        )
        await menu.show(ctx)
        return
    if await _over_daily_limit(ctx):
        await menu.show(ctx)
        return
    draft = {**await _new_draft(ctx), "text": caption}
    kept = await keep_photo(ctx)
    if kept is not None:
        draft["photos"] = [kept]
    await begin(ctx, category, draft)


async def keep_photo(ctx: Ctx) -> dict[str, Any] | None:
    """The photo of this update kept as a file (its key for the draft), or None with the
    reason told."""
    if ctx.photo is None:
        ctx.answer(ctx._(PHOTO_NOT_RECEIVED))
        return None
    try:
        kept = await photos.keep(ctx.config.proposals.photo_dir, ctx.photo)
    except photos.PhotoRefused as refused:
        reason = PHOTO_TOO_LARGE if refused.reason == "too_large" else PHOTO_NOT_IMAGE
        ctx.answer(ctx._(reason))
        return None
    return {"key": kept.key, "width": kept.width, "height": kept.height}


async def cancel(ctx: Ctx) -> None:
    ctx.answer(ctx._(CANCELLED))
    await menu.show(ctx)


def _cancel_button(step: Step, ctx: Ctx) -> Button:
    # TRANSLATORS: a button label, at most 20 characters.
    return step.button(ctx._("Cancel"), CANCEL)


# --- category ---------------------------------------------------------------------------
async def render_category(ctx: Ctx) -> Reply:
    items = [c.named for c in ctx.config.proposals.categories]
    buttons = choice_buttons(ctx, category, items)
    buttons.append([_cancel_button(category, ctx)])
    return Reply(ctx._("What is it about? Choose a category."), buttons, pinned_rows=1)


async def _chosen_category(ctx: Ctx, key: str) -> None:
    ctx.data["category"] = key
    await enter(ctx, card if ctx.data.get("text") else text)


async def on_category(ctx: Ctx, value: str) -> None:
    if value == CANCEL:
        await cancel(ctx)
    elif ctx.config.proposals.category(value) is not None:
        await _chosen_category(ctx, value)
    else:
        await ask_again(ctx, category, UNKNOWN_CATEGORY)


async def on_category_text(ctx: Ctx, value: str) -> None:
    items = [c.named for c in ctx.config.proposals.categories]
    chosen = match_named(items, value)
    if chosen is None:
        await ask_again(ctx, category, UNKNOWN_CATEGORY)
    else:
        await _chosen_category(ctx, chosen.id)


category = dialog.step("category", render_category, on_button=on_category, on_text=on_category_text)


# --- text -------------------------------------------------------------------------------
async def render_text(ctx: Ctx) -> Reply:
    prompt = ctx._(
        "Describe it in your own words: what, where, since when. One message, at most {n} "
        "characters.",
        n=ctx.config.limits.max_text_length,
    )
    buttons = []
    if ctx.data.get("text"):
        # TRANSLATORS: a button label, at most 20 characters.
        buttons.append([text.button(ctx._("Back"), BACK)])
    buttons.append([_cancel_button(text, ctx)])
    return Reply(prompt, buttons)


async def on_text(ctx: Ctx, value: str) -> None:
    # Empty and overlong messages are answered before any step (handlers.middlewares).
    ctx.data["text"] = value.strip()
    await enter(ctx, card)


async def on_text_button(ctx: Ctx, value: str) -> None:
    if value == CANCEL:
        await cancel(ctx)
    elif value == BACK and ctx.data.get("text"):
        await enter(ctx, card)
    else:
        await ask_again(ctx, text, N_("Please write the text of your proposal."))


text = dialog.step("text", render_text, on_button=on_text_button, on_text=on_text)


# --- the summary card --------------------------------------------------------------------
def _place_line(ctx: Ctx) -> str:
    data = ctx.data
    if data.get("latitude") is not None and data.get("longitude") is not None:
        return ctx._(
            "Place: the location you shared ({latitude}, {longitude})",
            latitude=f"{data['latitude']:.5f}",
            longitude=f"{data['longitude']:.5f}",
        )
    if data.get("address"):
        return ctx._("Place: {address}", address=data["address"])
    return ctx._("Place: not given")


async def render_card(ctx: Ctx) -> Reply:
    data = ctx.data
    lines = [
        ctx._("Your proposal — check it, then press Submit."),
        "",
        ctx._(
            "Category: {name}",
            name=category_name(ctx.config, data.get("category", ""), ctx.language),
        ),
        ctx._("Text: «{text}»", text=snippet(data.get("text", ""), 200)),
        neighbourhood_line(ctx, data.get("neighbourhood") or None),
        _place_line(ctx),
    ]
    count = len(_photos(ctx))
    if ctx.takes_photos or count:
        lines.append(ctx._("Photos: {n} of {most}", n=count, most=ctx.config.proposals.max_photos))
    # TRANSLATORS: a button label, at most 20 characters.
    place_label = ctx._("Add a place")
    first = [card.button(place_label, "place")]
    if ctx.takes_photos:
        # TRANSLATORS: a button label, at most 20 characters.
        first.append(card.button(ctx._("Add photos"), "photos"))
    # TRANSLATORS: a button label, at most 20 characters.
    edit = ctx._("Edit text")
    # TRANSLATORS: a button label, at most 20 characters.
    hood = ctx._("Neighbourhood")
    # TRANSLATORS: a button label, at most 20 characters.
    submit = ctx._("Submit")
    buttons = [
        first,
        [card.button(edit, "text"), card.button(hood, "hood")],
        [card.button(submit, "submit")],
        [_cancel_button(card, ctx)],
    ]
    return Reply("\n".join(lines), buttons)


async def on_card(ctx: Ctx, value: str) -> None:
    if value == "place":
        await enter(ctx, place)
    elif value == "photos" and ctx.takes_photos:
        await enter(ctx, photo)
    elif value == "text":
        await enter(ctx, text)
    elif value == "hood":
        await enter(ctx, hood)
    elif value == "submit":
        await offer_similar_or_submit(ctx)
    elif value == CANCEL:
        await cancel(ctx)
    else:
        await ask_again(ctx, card)


async def on_card_photo(ctx: Ctx, file_id: str) -> None:
    """A photo sent while the card is shown is added, as from "Add photos"."""
    await on_photo(ctx, file_id)


card = dialog.step("card", render_card, on_button=on_card, on_photo=on_card_photo)


# --- place --------------------------------------------------------------------------------
async def render_place(ctx: Ctx) -> Reply:
    if ctx.capabilities.asks_location:
        # Telegram asks for a location only with a keyboard of its own, never with
        # buttons under a message: that request is a message apart, before this one.
        # TRANSLATORS: a button label, at most 20 characters: shares the resident's location.
        label = ctx._("Share the location")
        ctx.answer(Reply(ctx._("Share the place with the button below…"), request_location=label))
        prompt = ctx._("…or type the address or a description of the place.")
    else:
        prompt = ctx._("Type the address or a description of the place.")
    buttons = []
    if ctx.data.get("address") or ctx.data.get("latitude") is not None:
        # TRANSLATORS: a button label, at most 20 characters.
        buttons.append([place.button(ctx._("Remove the place"), "remove")])
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([place.button(ctx._("Back"), BACK)])
    return Reply(prompt, buttons)


async def on_place_button(ctx: Ctx, value: str) -> None:
    if value == "remove":
        for key in ("address", "latitude", "longitude"):
            ctx.data.pop(key, None)
    elif value != BACK:
        await ask_again(ctx, place)
        return
    await enter(ctx, card)


async def on_address(ctx: Ctx, value: str) -> None:
    address = " ".join(value.split())
    if len(address) > MAX_ADDRESS:
        await ask_again(ctx, place, ctx._(ADDRESS_TOO_LONG, n=MAX_ADDRESS))
        return
    ctx.data["address"] = address
    ctx.data.pop("latitude", None)
    ctx.data.pop("longitude", None)
    await enter(ctx, card)


place = dialog.step("place", render_place, on_button=on_place_button, on_text=on_address)


def takes_location(state: str) -> bool:
    """Whether a shared location is an answer to this step (the card or the place)."""
    return state in (card.state, place.state)


async def on_location(ctx: Ctx) -> None:
    """A shared location: checked against the municipality's box, the neighbourhood found
    from the boundaries where the configuration gives them."""
    where = ctx.incoming.location
    config = ctx.config.proposals
    if where is None or not valid_point(where.latitude, where.longitude):
        await ask_again(ctx, place, N_("That location could not be read. Please try again."))
        return
    if config.bounds is not None and not config.bounds.contains(where.latitude, where.longitude):
        notice = ctx._(OUTSIDE, municipality=ctx.config.municipality.name)
        await ask_again(ctx, place, notice)
        return
    ctx.data.update(latitude=where.latitude, longitude=where.longitude, address="")
    found = neighbourhood_at(config.boundaries, where.latitude, where.longitude)
    if found:
        ctx.data["neighbourhood"] = found
    await enter(ctx, card)


# --- photos ---------------------------------------------------------------------------------
async def render_photo(ctx: Ctx) -> Reply:
    most = ctx.config.proposals.max_photos
    count = len(_photos(ctx))
    prompt = ctx._(
        "Send photos of it, one or several at once (at most {most}). Added so far: {n}.",
        most=most,
        n=count,
    )
    buttons = []
    if count:
        # TRANSLATORS: a button label, at most 20 characters.
        buttons.append([photo.button(ctx._("Remove the photos"), "remove")])
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([photo.button(ctx._("Done"), DONE)])
    return Reply(prompt, buttons)


async def on_photo(ctx: Ctx, file_id: str) -> None:
    most = ctx.config.proposals.max_photos
    if len(_photos(ctx)) >= most:
        # An album of more than allowed: the ones over the limit are refused, one by one.
        ctx.answer(
            ctx.ngettext(
                "A proposal can have at most {n} photo; this one was not added.",
                "A proposal can have at most {n} photos; this one was not added.",
                most,
            )
        )
        await enter(ctx, card)
        return
    kept = await keep_photo(ctx)
    if kept is not None:
        ctx.data["photos"] = [*_photos(ctx), kept]
    await enter(ctx, card if len(_photos(ctx)) >= most else photo)


async def on_photo_button(ctx: Ctx, value: str) -> None:
    if value == "remove":
        ctx.data["photos"] = []
        await enter(ctx, photo)
    elif value == DONE:
        await enter(ctx, card)
    else:
        await ask_again(ctx, photo)


async def on_photo_text(ctx: Ctx, value: str) -> None:
    await ask_again(ctx, photo, N_("Please send a photo, or press Done."))


photo = dialog.step(
    "photo", render_photo, on_button=on_photo_button, on_text=on_photo_text, on_photo=on_photo
)


# --- neighbourhood ---------------------------------------------------------------------------
async def render_hood(ctx: Ctx) -> Reply:
    hoods = ctx.config.municipality.neighbourhoods
    current = ctx.data.get("neighbourhood") or ""
    buttons = choice_buttons(ctx, hood, hoods, [current] if current else [])
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([hood.button(ctx._("Back"), BACK)])
    return Reply(ctx._("Which neighbourhood is it in?"), buttons, pinned_rows=1)


async def on_hood(ctx: Ctx, value: str) -> None:
    if value == BACK:
        await enter(ctx, card)
    elif find(ctx.config.municipality.neighbourhoods, value) is not None:
        ctx.data["neighbourhood"] = value
        await enter(ctx, card)
    else:
        await ask_again(ctx, hood)


async def on_hood_text(ctx: Ctx, value: str) -> None:
    chosen = match_named(ctx.config.municipality.neighbourhoods, value)
    if chosen is None:
        await ask_again(ctx, hood)
        return
    ctx.data["neighbourhood"] = chosen.id
    await enter(ctx, card)


hood = dialog.step("hood", render_hood, on_button=on_hood, on_text=on_hood_text)


# --- similar proposals, then submit ------------------------------------------------------------
async def offer_similar_or_submit(ctx: Ctx) -> None:
    data = ctx.data
    if await _over_daily_limit(ctx):
        await menu.show(ctx)
        return
    if ctx.config.proposals.category(data.get("category", "")) is None:
        await enter(ctx, category)  # the configuration changed under the draft
        return
    found = await similar.find(
        category=data["category"],
        text=data.get("text", ""),
        neighbourhood=data.get("neighbourhood", ""),
        latitude=data.get("latitude"),
        longitude=data.get("longitude"),
        distance=float(ctx.config.proposals.similar_distance_metres),
        limit=3,
    )
    if found:
        data["similar"] = [row.id for row in found]
        await enter(ctx, same)
        return
    await submit(ctx, limit_checked=True)


async def _offered(ctx: Ctx) -> list[proposals.Proposal]:
    rows = []
    for pid in ctx.data.get("similar", []):
        row = await proposals.get(int(pid))
        if row is not None and proposals.is_public(row) and row.status in OPEN:
            rows.append(row)
    return rows


async def render_same(ctx: Ctx) -> Reply:
    offered = await _offered(ctx)
    lines = [ctx._("These open proposals look like yours:"), ""]
    buttons = []
    for number, row in enumerate(offered, 1):
        lines.append(f"{number}. {summary_line(ctx.tr, ctx.config, row)}")
        # TRANSLATORS: a button label, at most 20 characters: "this is the same as proposal 1".
        label = ctx._("Same as {id}", id=number)
        buttons.append([same.button(label, str(row.id))])
    lines += ["", ctx._("If one is the same, follow it and add your support with one tap.")]
    # TRANSLATORS: a button label, at most 20 characters.
    different = ctx._("Mine is different")
    # TRANSLATORS: a button label, at most 20 characters.
    back = ctx._("Back")
    buttons.append([same.button(different, "different")])
    buttons.append([same.button(back, BACK)])
    return Reply("\n".join(lines), buttons)


async def on_same(ctx: Ctx, value: str) -> None:
    if value == "different":
        await submit(ctx)
        return
    if value == BACK:
        await enter(ctx, card)
        return
    chosen = next((row for row in await _offered(ctx) if str(row.id) == value), None)
    if chosen is None:
        await ask_again(ctx, same)
        return
    await proposals.follow_and_support(chosen, ctx.resident)
    ctx.answer(
        ctx._(
            "Thank you! You now follow {reference} and your support is counted. You will "
            "hear here of every change of its status.",
            reference=chosen.reference,
        )
    )
    await menu.show(ctx)


same = dialog.step("same", render_same, on_button=on_same)


async def submit(ctx: Ctx, *, limit_checked: bool = False) -> None:
    """Create the proposal and attach the draft's photos, in this update's transaction.
    ``limit_checked``: the daily limit was checked in this transaction already (a count
    of the resident's day is one statement an update less)."""
    data = ctx.data
    config = ctx.config.proposals
    chosen = config.category(data.get("category", ""))
    if chosen is None:
        await enter(ctx, category)
        return
    if not limit_checked and await _over_daily_limit(ctx):
        await menu.show(ctx)
        return
    neighbourhood = data.get("neighbourhood") or ""
    draft = proposals.Draft(
        category=chosen.id,
        department=chosen.department_for(neighbourhood),
        text=data.get("text", ""),
        language=ctx.language,
        neighbourhood=neighbourhood,
        latitude=data.get("latitude"),
        longitude=data.get("longitude"),
        address=data.get("address", ""),
    )
    created = await proposals.submit(ctx.resident, draft)
    kept = [photos.Kept(p["key"], int(p["width"]), int(p["height"])) for p in _photos(ctx)]
    await photos.attach(created.id, kept)
    log.info("proposal %s submitted", created.reference)
    ctx.answer(
        ctx._(
            "Thank you! Your proposal is registered as {reference}. You will hear here of "
            'every change of its status; "My proposals" in the menu shows it.',
            reference=created.reference,
        )
    )
    await menu.show(ctx)
