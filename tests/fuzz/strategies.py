"""What a resident (or somebody pretending to be a platform) may send, as hypothesis strategies.

A drawn example is a ``Conversation``: one fresh resident and the actions they take, in
order. The actions are neutral (``Say``, ``Tap``, ``Press``, ``Place``…) and each target in
``tests.fuzz.targets`` turns them into its platform's wire form at the moment it sends
them: a ``Tap`` presses whatever button is on screen then, so a conversation can walk
through onboarding and into the dialogs, and a ``Replay`` repeats a body sent before.
What is malformed depends on the platform (a lone surrogate is dropped by Telegram,
refused by the web chat): the target says what kind each input turned out to be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from dialogs.registry import REGISTRY
from handlers.commands import router
from handlers.router import Router

JSON = Any

# --- hostile values ----------------------------------------------------------------------
EDGES = (
    "\u200f",  # right-to-left mark
    "\u200e",  # left-to-right mark
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\ufeff",  # byte-order mark
    "\u00ad",  # soft hyphen
    "\u2028",  # line separator
    "\x00",
    "\x1b[31m",
    "\r\n",
    "\t",
    "👨‍👩‍👧‍👦",  # a family: seven code points, one glyph
    "🏳️‍🌈",
    "🇱🇻",
    "e\u0301",  # a combining accent
    "ﷺ",
    "𒐫",
    "\U0010ffff",
    "\ufffd",
    "Ā",
    "ж",
    "<b>x</b>",
    "&amp;",
    "*_`[]()~>#+-=|{}.!",
    "%s%n",
    "{n}",
    "{municipality}",
    "\\",
    '"',
    "'; DROP TABLE resident; --",
    "/",
    "@iesaiste_test_bot",
    " ",
)
LONG_LENGTHS = (1999, 2000, 2001, 4000, 4095, 4096, 4097, 10_000, 70_000)

edge_pieces = st.sampled_from(EDGES) | st.text(max_size=6)
# Text as a platform could carry it: valid Unicode (no lone surrogate), NUL included.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.lists(edge_pieces, max_size=12).map("".join),
    st.builds(
        lambda piece, n: (piece * n)[: max(n, 1)],
        st.sampled_from(["x", "ā", "😀", " ", "\u200b", "ab ", "\n\n"]),
        st.sampled_from(LONG_LENGTHS),
    ),
    st.sampled_from(["", " ", "\n", "\u200b", "0", "-1", "Centre", "Latviešu", "English"]),
)
# A lone surrogate, which JSON can carry as an escape ("\ud800") but UTF-8 cannot.
surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
text_with_surrogate = st.builds(
    lambda head, s, tail: head + s + tail, st.text(max_size=5), surrogate, st.text(max_size=5)
)

json_values: st.SearchStrategy[JSON] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
coordinate = st.one_of(
    st.floats(min_value=-90, max_value=90),
    st.floats(),  # NaN, infinities, out of range
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([90, -90, 180, -180, 90.0000001, 0, "56.95", True, None, [1], {"x": 1}]),
)


def _button_prefixes(root: Router) -> list[str]:
    found = list(root.buttons)
    for child in root.children:
        found.extend(_button_prefixes(child))
    return found


def _command_names(root: Router) -> list[str]:
    found = list(root.commands)
    for child in root.children:
        found.extend(_command_names(child))
    return found


# Payloads shaped as ours are, naming real routes and steps with ids and nonces that are
# stale, foreign or absurd: what an old message or a forged callback carries.
PREFIXES = sorted(
    {*_button_prefixes(router), *(state for d in REGISTRY.dialogs for state in d.steps)}
)
COMMANDS = sorted(_command_names(router))
forged_payload = st.one_of(
    st.builds(
        lambda prefix, nonce, value: f"{prefix}{nonce}:{value}",
        st.sampled_from(PREFIXES),
        st.sampled_from(["", "~0", "~zz", "~" + "f" * 40, "~\u202e"]),
        st.one_of(
            st.integers(min_value=-(2**63), max_value=2**64).map(str),
            st.sampled_from(["", "lv", "en", "ru", "centrs", "x", "1:2:3", "done", "yes", "🙂"]),
            # Numbers a payload's id must not take for one: too big, not ASCII, not whole.
            st.sampled_from(["99999999999999999999", "2147483648", "²", "١٢", "-1", "1e3", "0"]),
            st.text(max_size=8),
        ),
    ),
    st.sampled_from(PREFIXES),
    hostile_text.map(lambda text: text[:64]),
)


# --- the actions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Command:
    name: str
    args: str = ""
    entity: bool = True  # Telegram: marked as a bot_command, as Telegram does


@dataclass(frozen=True)
class Tap:
    """Press the ``index``-th button (modulo their number) of the newest question shown."""

    index: int


@dataclass(frozen=True)
class Press:
    """Press a button with this payload, which no question on screen may show."""

    payload: str
    on_message: int | None = None  # the message pressed on (None: none, as when it is gone)
    via: str = "postback"  # Messenger: "postback", "quick_reply" or "referral"


@dataclass(frozen=True)
class Place:
    latitude: JSON
    longitude: JSON


@dataclass(frozen=True)
class Photo:
    caption: str
    known: bool  # a file the platform would hand over, or an id/token/URL it would not


@dataclass(frozen=True)
class Contact:
    phone: str


@dataclass(frozen=True)
class Other:
    what: str  # a sticker, a voice note, a file: nothing a dialog reads


@dataclass(frozen=True)
class Ignored:
    """What the platform delivers but the bot takes no part in (edits, receipts…)."""

    what: str
    text: str = ""


@dataclass(frozen=True)
class Replay:
    """Send again, byte for byte, the input ``back`` steps ago (modulo how many there were)."""

    back: int


@dataclass(frozen=True)
class Flood:
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Malformed:
    """A platform-specific broken input: ``what`` names the recipe, ``value`` its ingredient."""

    what: str
    value: JSON = None


@dataclass(frozen=True)
class Unknown:
    """An action with fields the bot has never heard of added to its wire form."""

    action: Action
    fields: dict[str, JSON] = field(default_factory=dict)


Action = (
    Say
    | Command
    | Tap
    | Press
    | Place
    | Photo
    | Contact
    | Other
    | Ignored
    | Replay
    | Flood
    | Malformed
    | Unknown
)


@dataclass(frozen=True)
class Conversation:
    """One fresh resident: their app's language (Telegram) and what they do."""

    locale: str | None
    actions: tuple[Action, ...]


# --- strategies ----------------------------------------------------------------------------
command_name = st.one_of(
    st.sampled_from(COMMANDS),
    st.sampled_from(["START", "Help", "start@iesaiste_test_bot", "x" * 33, "", "ā", "1"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12),
)
single: st.SearchStrategy[Action] = st.one_of(
    st.builds(Say, hostile_text),
    st.builds(Command, command_name, hostile_text.map(lambda t: t[:300]), st.booleans()),
    st.builds(Tap, st.integers(min_value=0, max_value=40)),
    st.builds(Tap, st.integers(min_value=0, max_value=40)),  # twice as likely: walks deeper
    st.builds(
        Press,
        forged_payload,
        st.one_of(st.none(), st.integers(min_value=-1, max_value=2**40)),
        st.sampled_from(["postback", "quick_reply", "referral"]),
    ),
    st.builds(Place, coordinate, coordinate),
    st.builds(Photo, hostile_text.map(lambda t: t[:1100]), st.booleans()),
    st.builds(Contact, st.sampled_from(["+37120000000", "", "not a number", "+" + "9" * 40])),
    st.builds(Other, st.sampled_from(["sticker", "voice", "document"])),
)
well_formed: st.SearchStrategy[Action] = st.one_of(
    single,
    single,
    st.builds(Replay, st.integers(min_value=1, max_value=5)),
    st.builds(
        Flood,
        st.lists(
            st.sampled_from(["hi", "/help", "?", "ā" * 3000, ""]), min_size=5, max_size=30
        ).map(tuple),
    ),
)


def unknown_fields(reserved: frozenset[str]) -> st.SearchStrategy[dict[str, JSON]]:
    keys = st.text(min_size=1, max_size=12).filter(lambda key: key not in reserved)
    return st.dictionaries(keys, json_values, min_size=1, max_size=3)


def conversations(
    malformed: st.SearchStrategy[Action],
    ignored: st.SearchStrategy[Action],
    reserved: frozenset[str],
    locales: st.SearchStrategy[str | None],
    max_actions: int = 8,
) -> st.SearchStrategy[Conversation]:
    """A fresh resident's conversation: mostly well-formed, hostile values throughout."""
    action = st.one_of(
        well_formed,
        well_formed,
        st.builds(Unknown, single, unknown_fields(reserved)),
        ignored,
        malformed,
    )
    started = st.lists(action, min_size=1, max_size=max_actions)
    opening = st.sampled_from([(), (Command("start"),), (Command("start"), Tap(0))])
    return st.builds(
        lambda first, rest, locale: Conversation(locale, (*first, *rest)),
        opening,
        started,
        locales,
    )


# --- per platform: what is ignored and what is malformed -----------------------------------
telegram_locales = st.sampled_from(
    ["lv", "ru", "ru", "en", "lv-LV", "RU", "de", "", None, "\u202e"]
)
telegram_ignored = st.builds(
    Ignored,
    st.sampled_from(
        ["edited_message", "my_chat_member", "channel_post", "group", "no_from", "edited_photo"]
    ),
    hostile_text.map(lambda t: t[:200]),
)
# A field the bot reads, and a value of the wrong type or out of range for it.
TELEGRAM_BREAKS = (
    ("message", "from", "id"),
    ("message", "chat", "id"),
    ("message", "chat", "type"),
    ("message", "text"),
    ("message", "entities"),
    ("message", "location"),
    ("message", "photo"),
    ("message", "contact"),
    ("message", "from"),
    ("message", "message_id"),
    ("message", "from", "language_code"),
    ("callback_query", "from", "id"),
    ("callback_query", "data"),
    ("callback_query", "id"),
    ("callback_query", "message"),
    ("update_id",),
)
wrong_value = st.one_of(
    st.sampled_from(["abc", "", 0, -5, 2**53, 2**63, 1.5, True, None, [], {}, [1], {"id": "x"}]),
    text_with_surrogate,
)
telegram_malformed = st.one_of(
    st.builds(Malformed, st.just("not_json"), st.binary(max_size=40)),
    st.builds(
        Malformed,
        st.just("not_json"),
        st.sampled_from([b"", b"{", b'{"update_id": 1,', b"\xff\xfe{}", b"NaN", b"{'a': 1}"]),
    ),
    st.builds(
        Malformed, st.just("not_object"), json_values.filter(lambda v: not isinstance(v, dict))
    ),
    st.builds(
        Malformed, st.just("no_update_id"), st.dictionaries(st.text(max_size=8), json_values)
    ),
    st.builds(Malformed, st.just("nested"), st.sampled_from([200, 990, 5_000, 100_000])),
    st.builds(Malformed, st.just("huge"), st.sampled_from([1024 * 1024 + 1, 3 * 1024 * 1024])),
    st.builds(
        Malformed,
        st.just("wrong_secret"),
        st.sampled_from(["", "x", "webhook-secret", "\u202e", None]),
    ),
    st.builds(
        Malformed,
        st.just("break"),
        st.tuples(st.sampled_from(TELEGRAM_BREAKS), wrong_value),
    ),
    st.builds(
        Malformed,
        st.just("surrogate_text"),
        text_with_surrogate,
    ),
)
TELEGRAM_RESERVED = frozenset(
    {"update_id", "message", "callback_query", "from", "chat", "text", "entities", "date"}
)

messenger_ignored = st.builds(
    Ignored,
    st.sampled_from(["echo", "read", "delivery", "reaction", "message_edit", "optin", "user_ref"]),
    hostile_text.map(lambda t: t[:200]),
)
psid_like: st.SearchStrategy[JSON] = st.one_of(
    st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=10).filter(
        lambda s: not s.isascii()
    ),  # digits, but not ASCII ones: "١٢٣"
    st.sampled_from(["", "abc", "-1", "1.5", "9" * 65, " 123", "123\n", "²³"]),
    st.integers(min_value=-5, max_value=2**64),
    st.sampled_from([None, [], {}, True]),
)
messenger_malformed = st.one_of(
    st.builds(
        Malformed,
        st.just("wrong_signature"),
        st.sampled_from(["", "sha256=", "sha1=abc", "sha256=" + "0" * 64, "other-secret", None]),
    ),
    st.builds(Malformed, st.just("not_json"), st.binary(max_size=40)),
    st.builds(
        Malformed, st.just("not_object"), json_values.filter(lambda v: not isinstance(v, dict))
    ),
    st.builds(
        Malformed,
        st.just("not_page"),
        st.sampled_from(
            [
                {},
                {"object": "user", "entry": []},
                {"object": "page"},
                {"object": "page", "entry": {}},
            ]
        ),
    ),
    st.builds(Malformed, st.just("nested"), st.sampled_from([200, 5_000, 100_000])),
    st.builds(Malformed, st.just("huge"), st.sampled_from([1024 * 1024 + 1, 2 * 1024 * 1024])),
    st.builds(Malformed, st.just("bad_sender"), psid_like),
    st.builds(
        Malformed, st.just("bad_item"), json_values.filter(lambda v: not isinstance(v, dict))
    ),
    st.builds(
        Malformed,
        st.just("surrogate_mid"),
        text_with_surrogate,
    ),
)
MESSENGER_RESERVED = frozenset({"sender", "recipient", "message", "postback", "referral"})

webchat_ignored = st.builds(Ignored, st.just("binary"), hostile_text.map(lambda t: t[:200]))
webchat_malformed = st.one_of(
    st.builds(Malformed, st.just("not_json"), st.text(max_size=30)),
    st.builds(
        Malformed, st.just("not_object"), json_values.filter(lambda v: not isinstance(v, dict))
    ),
    st.builds(
        Malformed,
        st.just("bad_frame"),
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["text", "button", "location", "photo", "open", "", 1]),
                "id": st.one_of(st.text(max_size=70), json_values),
                "text": st.one_of(text_with_surrogate, json_values),
                "payload": st.one_of(st.text(min_size=65, max_size=70), json_values),
            },
        ),
    ),
    st.builds(Malformed, st.just("nul_text"), hostile_text.map(lambda t: t[:50] + "\x00")),
    st.builds(Malformed, st.just("surrogate_text"), text_with_surrogate),
    st.builds(Malformed, st.just("nested"), st.sampled_from([200, 990, 5_000, 50_000])),
    st.builds(Malformed, st.just("huge"), st.sampled_from([256 * 1024 + 1, 1024 * 1024])),
)
WEBCHAT_RESERVED = frozenset({"type", "id", "text", "payload", "latitude", "longitude", "photo"})


def telegram_conversations(max_actions: int = 8) -> st.SearchStrategy[Conversation]:
    return conversations(
        telegram_malformed, telegram_ignored, TELEGRAM_RESERVED, telegram_locales, max_actions
    )


def messenger_conversations(max_actions: int = 8) -> st.SearchStrategy[Conversation]:
    return conversations(
        messenger_malformed, messenger_ignored, MESSENGER_RESERVED, st.just(None), max_actions
    )


def webchat_conversations(max_actions: int = 8) -> st.SearchStrategy[Conversation]:
    return conversations(
        webchat_malformed, webchat_ignored, WEBCHAT_RESERVED, st.just(None), max_actions
    )
