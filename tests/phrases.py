"""What the bot says, as the tests expect it: the catalogs' message ids, and ``tr`` to say
them in a language.

The ids are copied from the code on purpose: a test that asserts an exact reply must not
follow the code if a prompt is reworded by mistake. ``tr`` refuses an id the catalog does not
hold, so a copy that drifted from the code fails loudly instead of comparing the bot's
translated text with an English fallback.
"""

from __future__ import annotations

from functools import cache

from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, catalog_path, translator
from handlers.dispatcher import FAILED

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
    "/announcements – scheduled and recent announcements; cancel or confirm"
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
NO_NEIGHBOURHOOD_LINE = "Neighbourhood: not chosen"
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
DELETE_CONFIRMATION = (
    "Delete everything we hold about you? Your settings and chat accounts will be erased. "
    "This cannot be undone."
)
DATA_DELETED = "Your data has been deleted. If you write again, we will start afresh with /start."
NOTHING_DELETED = "Nothing was deleted."

# --- what a step cannot take ----------------------------------------------------------------
EMPTY = "Your message was empty. Please write something or use the buttons."
TOO_LONG_ONE = "Your message is too long: I can read at most {n} character. Please shorten it."
TOO_LONG = "Your message is too long: I can read at most {n} characters. Please shorten it."
PLEASE_USE_BUTTONS = "Please choose one of the buttons below."
UNKNOWN_NEIGHBOURHOOD = "I do not know that neighbourhood. Please choose one of the buttons below."
THROTTLED = (
    "You are sending messages faster than I can read them. Please wait a minute, then carry on."
)


@cache
def _message_ids(language: str) -> frozenset[str]:
    with catalog_path(language).open("rb") as file:
        catalog = read_po(file, locale=language)
    ids: set[str] = set()
    for message in catalog:
        ids.update(message.id if isinstance(message.id, tuple) else (message.id,))
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
