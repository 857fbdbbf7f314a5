"""What the bot says, as the tests expect it: the catalogs' message ids, and ``tr`` to say
them in a language.

The ids are copied from the code on purpose: a test that asserts an exact reply must not
follow the code if a prompt is reworded by mistake. ``tr`` refuses an id the catalog does not
hold, so a copy that drifted from the code fails loudly instead of comparing the bot's
translated text with an English fallback.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from babel.messages.pofile import read_po

from bot.core.i18n import LANGUAGE_NAMES, LANGUAGES, catalog_path, translator
from handlers.dispatcher import FAILED
from storage.models import ChannelIdentity, Resident

MUNICIPALITY = "Demo novads"  # the demo municipality's name, in every language

# --- onboarding -----------------------------------------------------------------------------
LANGUAGE_QUESTION = (
    "Hello! I am the residents' assistant of {municipality}. Here you can follow what "
    "happens in your neighbourhood and have your say.\n\nPlease choose your language:"
)
NEIGHBOURHOOD_QUESTION = (
    "Which neighbourhood do you live in, or care about most? "
    "You will get the news and questions that concern it.\n\n"
    "Choose below, or type its name."
)
TOPICS_QUESTION = (
    "Which topics interest you? Tap a topic to choose it, tap again to remove it, then press Done."
)
TOPICS_CHOSEN_ONE = "{n} topic chosen: {names}"
TOPICS_CHOSEN = "{n} topics chosen: {names}"
PRIVACY_QUESTION = (
    "Before we start, how we treat your data:\n\n"
    "• We keep only your language, neighbourhood, topics and the id of your chat account, "
    "so that we can answer you and send you what you asked for.\n"
    "• We do not share them with anyone and never show them publicly.\n"
    "• /mydata shows everything we hold about you, and there you can delete it at any time.\n\n"
    "Do you agree?"
)
DECLINED = (
    "Understood. We have not kept anything about you. Send /start whenever you change your mind."
)
ALL_SET = "Thank you, you are all set! You can change these choices any time in Settings."

# --- the menu, commands -------------------------------------------------------------------
MAIN_MENU = "Main menu — what would you like to do?"
HELP_FIRST_LINE = "I am the residents' assistant of {municipality}."
HELP = (
    "I am the residents' assistant of {municipality}.\n\n"
    "/menu – the main menu\n"
    "/propose – submit an idea or report a problem\n"
    "/myproposals – your proposals and those you follow\n"
    "/proposals – recent proposals of your neighbourhood\n"
    "/polls – open polls and your answers\n"
    "/stop – no more announcements; /start brings them back\n"
    "/settings – language, neighbourhood and topics\n"
    "/language – change the language\n"
    "/mydata – see or delete what we hold about you\n"
    "/cancel – stop what we are doing now\n"
    "/help – this help"
)
STAFF_HELP = (
    "For staff:\n"
    "/announce – write an announcement\n"
    "/announcements – scheduled and recent announcements; cancel or confirm\n"
    "/newpoll – make a quick poll\n"
    "/polls – polls with their results; close, move the closing or cancel"
)
CHOOSE_LANGUAGE = "Choose your language:"
LANGUAGE_SWITCHED = "Done: I will write to you in English."
LANGUAGE_BUTTON_EXPIRED = "That button has expired."
STOPPED = "Stopped. Send /start whenever you want to begin."
CANCELLED = "Cancelled."
NOTHING_TO_CANCEL = "There was nothing to cancel."
MUTED = (
    "Done: you will get no more announcements. You can still write to me "
    "any time; /start turns announcements on again."
)
ALREADY_MUTED = "Announcements are already off. /start turns them on again."
UNMUTED = "Welcome back: you will get announcements again."

# --- settings -------------------------------------------------------------------------------
SETTINGS_HEADER = "Your settings:"
LANGUAGE_LINE = "Language: {name}"
NEIGHBOURHOOD_LINE = "Neighbourhood: {name}"
NO_HOOD_LINE = "Neighbourhood: not chosen"
TOPICS_LINE = "Topics: {names}"
NO_TOPICS_LINE = "Topics: none chosen"
SETTINGS_NEIGHBOURHOOD = "Choose your neighbourhood, or type its name:"
SETTINGS_TOPICS = "Tap a topic to choose it or remove it, then press Done."

# --- my data --------------------------------------------------------------------------------
DATA_HEADER = "This is everything we hold about you:"
ACCOUNT_LINE = "Account: {channel} {id}, since {since}"
PRIVACY_LINE = "Privacy notice accepted: {when}"
LAST_MESSAGE_LINE = "Last message: {when}"
WEB_CHAT = "Web chat"
DELETE_QUESTION = (
    "Delete everything we hold about you? Your settings and chat accounts will be erased. "
    "This cannot be undone."
)
CONTRIBUTIONS_STAY = (
    "Proposals you submitted and replies you wrote stay for the municipality's work, "
    "with nothing that links them to you."
)
DELETE_CONFIRMATION = f"{DELETE_QUESTION}\n\n{CONTRIBUTIONS_STAY}"  # English only
DATA_DELETED = "Your data has been deleted. If you write again, we will start afresh with /start."
NOTHING_DELETED = "Nothing was deleted."

# --- what a step cannot take ----------------------------------------------------------------
EMPTY = "Your message was empty. Please write something or use the buttons."
TOO_LONG_ONE = "Your message is too long: I can read at most {n} character. Please shorten it."
TOO_LONG = "Your message is too long: I can read at most {n} characters. Please shorten it."
PLEASE_USE_BUTTONS = "Please choose one of the buttons below."
UNKNOWN_NEIGHBOURHOOD = "I do not know that neighbourhood. Please choose one of the buttons below."
THROTTLED = (
    "You are sending messages faster than I can read them. Please wait {n} second, then carry on.",
    "You are sending messages faster than I can read them. Please wait {n} seconds, then carry on.",
)


@cache
def _message_ids(language: str) -> frozenset[str]:
    with catalog_path(language).open("rb") as file:
        catalog = read_po(file, locale=language)
    ids: set[str] = set()
    for message in catalog:
        if isinstance(message.id, str):
            ids.add(message.id)
        else:  # a plural: (singular, plural)
            ids.update(str(part) for part in message.id)
    return frozenset(ids)


def _known(language: str, *messages: str) -> None:
    for message in messages:
        assert message in _message_ids(language), f"not in the {language} catalog: {message!r}"


def tr(language: str, message: str, /, **values: object) -> str:
    """``message`` as the bot says it in ``language`` (whatever the catalogs hold today)."""
    _known(language, message)
    return translator(language).gettext(message, **values)


def ntr(language: str, singular: str, plural: str, n: int, /, **values: object) -> str:
    """The plural form of a message for ``n`` (Latvian and Russian have three)."""
    _known(language, singular, plural)
    return translator(language).ngettext(singular, plural, n, **values)


def too_long(language: str, limit: int = 2000) -> str:
    """The answer to an overlong text."""
    return ntr(language, TOO_LONG_ONE, TOO_LONG, limit)


def failed_apologies() -> set[str]:
    """The generic apology of a crashed update, in every language."""
    return {tr(language, FAILED) for language in LANGUAGES}


def settings_home(language: str, language_name: str, hood: str | None, topics: str = "") -> str:
    """The settings overview; ``hood`` and ``topics`` named as the resident sees them."""
    return "\n".join(
        [
            tr(language, SETTINGS_HEADER),
            tr(language, LANGUAGE_LINE, name=language_name),
            _hood_line(language, hood),
            _topics_line(language, topics),
        ]
    )


def _hood_line(language: str, hood: str | None) -> str:
    return tr(language, NEIGHBOURHOOD_LINE, name=hood) if hood else tr(language, NO_HOOD_LINE)


def _topics_line(language: str, topics: str) -> str:
    return tr(language, TOPICS_LINE, names=topics) if topics else tr(language, NO_TOPICS_LINE)


CHANNEL_NAMES = {"telegram": "Telegram", "webchat": WEB_CHAT}


async def my_data_overview(
    channel: str,
    user_id: str,
    zone: ZoneInfo,
    language: str,
    language_name: str,
    hood: str | None,
    topics: str = "",
) -> str:
    """What /mydata shows the resident of one account: the given choices, and the moments
    the database holds for them, in the municipality's time to the minute."""

    def when(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "—"

    identity = await ChannelIdentity.get(channel=channel, external_id=user_id)
    resident = await Resident.get(id=identity.resident_id)  # type: ignore[attr-defined]
    name = CHANNEL_NAMES[channel]
    account = tr(
        language,
        ACCOUNT_LINE,
        channel=tr(language, name) if name == WEB_CHAT else name,
        id=user_id,
        since=when(identity.created_at),
    )
    return "\n".join(
        [
            tr(language, DATA_HEADER),
            "",
            tr(language, LANGUAGE_LINE, name=language_name),
            _hood_line(language, hood),
            _topics_line(language, topics),
            account,
            tr(language, PRIVACY_LINE, when=when(resident.privacy_accepted_at)),
            tr(language, LAST_MESSAGE_LINE, when=when(resident.last_seen_at)),
        ]
    )


# --- staff: announcements -------------------------------------------------------------------
WRITE_LATVIAN = (
    "Write the announcement in Latvian, as residents will read it. "
    "Residents whose language has no text of its own get this one."
)
WRITE_LANGUAGE = "Write the text for residents who chose {language}."
DISCARD_HINT = "/cancel stops and discards the draft."
NEW_ANNOUNCEMENT = "New announcement"
NO_TEXT_IN = "{language}: none (they get the Latvian text)"
IMAGE_ATTACHED = "Image: attached"
IMAGE_TEXT_ONLY = "Image: attached (residents on the web chat get the text only)"
NO_IMAGE = "Image: none"
AUDIENCE_ONE = "Audience: {who} ({count} resident now)"
AUDIENCE = "Audience: {who} ({count} residents now)"
URGENT_YES = "Urgent: yes"
URGENT_NO = "Urgent: no"
GOES_OUT = "Goes out: {when}"
AS_SOON = "as soon as you confirm"
EVERYONE = "everyone"
TO_NEIGHBOURHOODS = "neighbourhoods: {names}"
TO_TOPICS = "topics: {names}"
WHO_SHOULD_GET_IT = "Who should get it?"
PICK_NEIGHBOURHOODS = "Tap the neighbourhoods to include, then press Done."
PICK_TOPICS = "Tap the topics to include, then press Done."
CHOOSE_AT_LEAST_ONE = "Choose at least one, or press Back."
WHEN_QUESTION = (
    "When should it go out? Write a date and time such as 1.12.2026 10:00, "
    "or only a time such as 10:00 (then the next 10:00 to come). Now it is {now}."
)
UNREADABLE_TIME = "I could not read that time. Please write it like 1.12.2026 10:00."
TIME_PASSED = "That time has passed. Please give a time still to come."
SEND_PHOTO = "Send the photo to go with the announcement; it comes with the text."
PLEASE_SEND_PHOTO = "Please send a photo, or press Back."
PHOTO_ATTACHED = "The image is attached."
DISCARDED = "The draft is discarded; nothing was sent."
PREVIEW_ONE = (
    "Above is how it looks. Audience: {who} — {count} resident now. Each gets the "
    "text in their language if you wrote one, otherwise the Latvian text."
)
PREVIEW = (
    "Above is how it looks. Audience: {who} — {count} residents now. Each gets the "
    "text in their language if you wrote one, otherwise the Latvian text."
)
NOBODY_MATCHES = "Nobody matches this audience yet."
URGENT_GOES_OUT = "Urgent: it goes out even during quiet hours."
ADMIN_MUST_CONFIRM = "An admin must confirm it first; admins will be told."
SCHEDULED_FOR = (
    "Announcement #{id} is scheduled for {moment}. In /announcements you can see it "
    "and cancel it. This message will show how it goes out."
)
GOING_OUT_NOW = "Announcement #{id} is going out now. This message will show how it goes."
WAITS_FOR_ADMIN = (
    "Announcement #{id} waits for an admin's confirmation, as it is urgent. "
    "Admins have been told; /announcements shows it."
)
ADMIN_ASKED = (
    "Urgent announcement #{id} from {author} waits for an admin's confirmation. "
    "Send /announcements to read it and confirm or decline it."
)
NO_ADMIN_TOLD = (
    "No admin could be told: none has written to the bot yet. Ask an admin "
    "to send /announcements to confirm it."
)
ANNOUNCEMENTS = "Announcements"
WAITING_HEADER = "Waiting for an admin's confirmation:"
SCHEDULED_HEADER = "Scheduled:"
RECENT_HEADER = "Recently sent:"
BY_AUTHOR = "by {author}"
CANCEL_QUESTION = "Cancel this announcement?"
STOP_QUESTION = "Stop sending this announcement? Residents who already got it keep it."
CANCELLED_NOBODY = "Announcement #{id} is cancelled; nobody got it."
ALREADY_CANCELLED = "Announcement #{id} was already cancelled."
TOO_LATE = "Too late: announcement #{id} has already gone out."
NO_SUCH_ANNOUNCEMENT = "There is no such announcement."
CONFIRMED = "Confirmed: announcement #{id} goes out at its time."
ADMIN_CONFIRMED = "An admin confirmed your urgent announcement #{id}: it will go out as scheduled."
ALREADY_DECIDED = "Someone else has already decided on announcement #{id}; it is now {state}."
GONE_OUT_ONE = "Announcement #{id} has gone out to {count} resident."
GONE_OUT = "Announcement #{id} has gone out to {count} residents."
GOING_OUT_ONE = "Announcement #{id} is going out to {count} resident."
GOING_OUT = "Announcement #{id} is going out to {count} residents."
STOPPED_BY_STAFF = "Announcement #{id} was stopped by staff."

# --- button labels that a test presses by their words ------------------------------------
SEND_FOR_APPROVAL = "Send for approval"  # an urgent announcement, by a non-admin
MORE = "More…"  # the engine's next page of buttons
PREVIOUS = "‹ Previous"  # the engine's page before


def draft_card(
    language: str,
    texts: dict[str, str],
    who: str,
    count: int,
    *,
    image: str = NO_IMAGE,
    urgent: bool = False,
    goes: str = "",
) -> str:
    """The draft card: each language's text, the image line, audience, urgency, time.
    ``who`` as the card names the audience (``audience()``), ``goes`` a moment or nothing."""
    lines = [tr(language, NEW_ANNOUNCEMENT), ""]
    for code in LANGUAGES:
        if texts.get(code):
            lines.append(f"{LANGUAGE_NAMES[code]}: «{texts[code]}»")
        elif code != "lv":
            lines.append(tr(language, NO_TEXT_IN, language=LANGUAGE_NAMES[code]))
    lines += [
        "",
        tr(language, image),
        ntr(language, AUDIENCE_ONE, AUDIENCE, count, who=who, count=count),
        tr(language, URGENT_YES if urgent else URGENT_NO),
        tr(language, GOES_OUT, when=goes or tr(language, AS_SOON)),
    ]
    return "\n".join(lines)


def audience(language: str, kind: str = "all", names: str = "") -> str:
    """How the card, the preview and the list name an audience."""
    if kind == "neighbourhood":
        return tr(language, TO_NEIGHBOURHOODS, names=names)
    if kind == "topic":
        return tr(language, TO_TOPICS, names=names)
    return tr(language, EVERYONE)


def preview_summary(
    language: str,
    who: str,
    count: int,
    *,
    goes: str = "",
    urgent: bool = False,
    admin: bool = False,
) -> str:
    """The summary under the preview, outside quiet hours."""
    lines = [ntr(language, PREVIEW_ONE, PREVIEW, count, who=who, count=count)]
    if count == 0:
        lines.append(tr(language, NOBODY_MATCHES))
    lines.append(tr(language, GOES_OUT, when=goes or tr(language, AS_SOON)))
    if urgent:
        lines.append(tr(language, URGENT_GOES_OUT))
        if not admin:
            lines.append(tr(language, ADMIN_MUST_CONFIRM))
    return "\n".join(lines)


def write_prompt(language: str, code: str = "lv") -> str:
    """The question for an announcement's text in ``code``, with the hint under it."""
    if code == "lv":
        prompt = tr(language, WRITE_LATVIAN)
    else:
        prompt = tr(language, WRITE_LANGUAGE, language=LANGUAGE_NAMES[code])
    return f"{prompt}\n\n{tr(language, DISCARD_HINT)}"


def when_prompts(language: str, zone: ZoneInfo, before: datetime, after: datetime) -> set[str]:
    """The time question, which names the minute it is asked in: asked between ``before``
    and ``after``, it names one of the two."""
    say = translator(language)
    return {tr(language, WHEN_QUESTION, now=say.moment(at, zone)) for at in (before, after)}


MESSENGER_WAITING = "… of them on Messenger, which allows no message until they write: {n}"


def progress(
    language: str, announcement_id: int, recipients: int, head: tuple[str, str] | str, **n: int
) -> str:
    """The report's figures (``sent``, ``queued``, ``waiting``, ``waiting_messenger``,
    ``failed``, ``blocked``, ``cancelled``) under ``head``: a plural pair such as
    (GOING_OUT_ONE, GOING_OUT) or one id."""
    if isinstance(head, tuple):
        first = ntr(language, *head, recipients, id=announcement_id, count=recipients)
    else:
        first = tr(language, head, id=announcement_id)
    lines = [
        first,
        tr(language, "Sent: {n}", n=n.get("sent", 0)),
        tr(language, "Queued: {n}", n=n.get("queued", 0)),
        tr(language, "Waiting until the resident writes to the bot: {n}", n=n.get("waiting", 0)),
        *(
            [tr(language, MESSENGER_WAITING, n=n["waiting_messenger"])]
            if n.get("waiting_messenger")
            else []
        ),
        tr(language, "Failed: {n}", n=n.get("failed", 0)),
        tr(language, "Blocked the bot: {n}", n=n.get("blocked", 0)),
    ]
    if n.get("cancelled"):
        lines.append(tr(language, "Stopped before sending: {n}", n=n["cancelled"]))
    return "\n".join(lines)


def throttled(
    language: str, window_start: datetime, window: int, sent: datetime, answered: datetime
) -> set[str]:
    """The slow-down notice as the bot words it for a message sent at ``sent`` and answered
    by ``answered``: the whole seconds left of the window (rounded up, as
    handlers.middlewares counts them) at the moment the bot looked, which lies between."""

    def at(moment: datetime) -> str:
        left = (window_start + timedelta(seconds=window) - moment).total_seconds()
        return ntr(language, *THROTTLED, max(1, math.ceil(left)))

    return {at(sent), at(answered)}
