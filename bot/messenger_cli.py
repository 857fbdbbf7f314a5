"""``iesaiste messenger setup|check``: the Facebook page's profile, and whether it is ready.

``setup`` sets through the Messenger Profile API what a resident sees before writing:
the Get Started button (payload "/start", so it acts as the typed command), the
greeting and the persistent menu, in Latvian (Meta's ``default``: lv_LV is not among
its locales), English and Russian. ``check`` asks Meta whether the token works, the
app is subscribed to the page's events and setup has been run, and says plainly what
to fix. Neither needs the database. No line carries the page token or a secret: the
token travels only in the Authorization header (``GraphClient``), and every line is
scrubbed of the configured secrets anyway.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.channels.messenger import WEBHOOK_PATH
from bot.channels.messenger_graph import GraphClient, GraphError
from bot.core.config import Config, ConfigError
from bot.core.i18n import N_, translator

# Meta's locale of each language; "default" is what every other locale sees.
LOCALES = {"default": "lv", "en_US": "en", "ru_RU": "ru"}
GET_STARTED = "/start"
GREETING_LENGTH = 160  # Meta's limit, characters
MENU_ITEMS = 20  # Meta's limit of a persistent menu's items
TITLE_LENGTH = 30  # Meta's limit of a menu item's title
PAYLOAD_LENGTH = 1000
NEEDED_FIELDS = ("messages", "messaging_postbacks")
RECOMMENDED_FIELDS = ("messaging_referrals",)
PROFILE_FIELDS = "get_started,greeting,persistent_menu"
SUBSCRIPTIONS_HINT = (
    "in Meta's dashboard: your app → Messenger → Messenger API Settings → Webhooks, "
    "Add subscriptions for the page"
)

# The menu: the commands residents reach for most (handlers.commands.MENU_COMMANDS),
# under titles short enough for Messenger's 30 characters in every language.
MENU = (
    ("menu", N_("Main menu")),
    # TRANSLATORS: an item of the Messenger page's menu, at most 30 characters.
    ("propose", N_("Submit an idea or a problem")),
    ("myproposals", N_("My proposals")),
    ("polls", N_("Polls")),
    ("settings", N_("Settings")),
    ("mydata", N_("My data")),
    ("help", N_("Help")),
)
GREETING = N_(
    # TRANSLATORS: the Messenger page's greeting, at most 160 characters with the name.
    "Hello! I am the residents' assistant of {municipality}: ideas, problem reports, "
    "polls and announcements."
)
# When the municipality's name makes the greeting too long for Meta.
SHORT_GREETING = N_(
    # TRANSLATORS: the Messenger page's greeting, at most 160 characters.
    "Hello! I am the residents' assistant: ideas, problem reports, polls and announcements."
)


def add_parser(commands: Any) -> None:
    """The ``messenger`` sub-commands, on the ``iesaiste`` parser's sub-parsers."""
    messenger = commands.add_parser(
        "messenger", help="set up the Facebook page's Messenger profile, or check the page"
    ).add_subparsers(dest="messenger_command", required=True, metavar="{setup,check}")
    messenger.add_parser(
        "setup", help="set the Get Started button, the greeting and the persistent menu"
    )
    messenger.add_parser(
        "check", help="check the page token, the webhook subscription and the setup"
    )


def check_config(config: Config) -> None:
    """Refuse before any call when there is no page to talk to."""
    if not config.messenger.enabled:
        raise ConfigError(
            "messenger.page_token",
            "",
            "the page access token (or IESAISTE_MESSENGER_PAGE_TOKEN) for iesaiste messenger",
        )


# --- what setup sets --------------------------------------------------------------
def profile(config: Config) -> dict[str, Any]:
    """The Messenger Profile API body; ValueError if a text breaks Meta's limits."""
    from handlers.commands import MENU_COMMANDS  # the commands that exist

    known = {name for name, _ in MENU_COMMANDS}
    greetings, menus = [], []
    for locale, language in LOCALES.items():
        tr = translator(language)
        text = tr.gettext(GREETING, municipality=config.municipality.name)
        if len(text) > GREETING_LENGTH:
            text = tr.gettext(SHORT_GREETING)
        greetings.append({"locale": locale, "text": text})
        actions = [
            {"type": "postback", "title": tr.gettext(title), "payload": f"/{name}"}
            for name, title in MENU
            if name in known
        ]
        menus.append(
            {"locale": locale, "composer_input_disabled": False, "call_to_actions": actions}
        )
    body = {
        "get_started": {"payload": GET_STARTED},
        "greeting": greetings,
        "persistent_menu": menus,
    }
    problems = list(_limits(body))
    if problems:
        raise ValueError("; ".join(problems))
    return body


def _limits(body: dict[str, Any]) -> Iterable[str]:
    for greeting in body["greeting"]:
        if not 0 < len(greeting["text"]) <= GREETING_LENGTH:
            yield f"greeting {greeting['locale']}: {len(greeting['text'])} characters"
    for menu in body["persistent_menu"]:
        actions = menu["call_to_actions"]
        if not 0 < len(actions) <= MENU_ITEMS:
            yield f"menu {menu['locale']}: {len(actions)} items"
        for action in actions:
            if not 0 < len(action["title"]) <= TITLE_LENGTH:
                yield f"menu {menu['locale']}: {action['title']!r} is over {TITLE_LENGTH}"
            if len(action["payload"].encode()) > PAYLOAD_LENGTH:
                yield f"menu {menu['locale']}: payload {action['payload'][:20]!r}… too long"


# --- running ------------------------------------------------------------------------
@dataclass(slots=True)
class _Out:
    """Lines for the operator, each scrubbed of the configured secrets."""

    secrets: list[str]

    def _clean(self, line: str) -> str:
        line = " ".join(line.splitlines())
        for secret in sorted(self.secrets, key=len, reverse=True):
            line = line.replace(secret, "…")
        return line

    def say(self, line: str) -> None:
        print(self._clean(line))

    def problem(self, line: str) -> None:
        print(f"iesaiste: {self._clean(line)}", file=sys.stderr)


async def run(config: Config, args: argparse.Namespace) -> int:
    """Exit code: 0 all is well, 1 a problem Meta or the page has (a line each)."""
    check_config(config)
    fb = config.messenger
    secrets = [s for s in (fb.page_token, fb.app_secret, fb.verify_token) if len(s) >= 4]
    out = _Out(secrets)
    body = profile(config) if args.messenger_command == "setup" else {}
    async with aiohttp.ClientSession() as session:
        client = GraphClient(session, fb.api_url, fb.api_version, fb.page_token)
        try:
            if args.messenger_command == "setup":
                return await _setup(client, body, out)
            return await _check(client, config, out)
        except GraphError as error:
            out.problem(f"the Graph API refused: {_explain(error)}")
        except (aiohttp.ClientError, TimeoutError) as error:
            reason = str(error) or type(error).__name__
            out.problem(f"no answer from the Graph API at {fb.api_url}: {reason}")
    return 1


def _explain(error: GraphError) -> str:
    text = f"code {error.code}, subcode {error.subcode}: {error.message}"
    if error.code == 190:
        return f"the page access token was refused ({text}); set a new messenger.page_token"
    if error.code in (4, 32, 613):
        return f"{text}; Meta allows 10 profile calls in 10 minutes, try again later"
    return text


async def _setup(client: GraphClient, body: dict[str, Any], out: _Out) -> int:
    await client.call("POST", "/me/messenger_profile", body=body)
    out.say(f"Get Started button: {GET_STARTED}")
    for greeting in body["greeting"]:
        out.say(f"greeting ({greeting['locale']}): {greeting['text']}")
    for menu in body["persistent_menu"]:
        titles = " | ".join(action["title"] for action in menu["call_to_actions"])
        out.say(f"menu ({menu['locale']}): {titles}")
    return 0


async def _check(client: GraphClient, config: Config, out: _Out) -> int:
    problems = 0
    try:
        page = await client.call("GET", "/me", params={"fields": "name,id"})
    except GraphError as error:
        if error.code != 190:
            raise
        out.problem(
            f"the page access token was refused: {error.message} (code 190, subcode "
            f"{error.subcode}); make a new page access token in Meta's dashboard (your app → "
            "Messenger → Messenger API Settings → Generate token) and set messenger.page_token"
        )
        return 1  # nothing else can be asked with that token
    page_id = str(page.get("id") or "me")
    out.say(f"page: {page.get('name', '?')} (id {page_id}): the page access token works")

    apps = (await client.call("GET", f"/{page_id}/subscribed_apps")).get("data") or []
    best: tuple[str, set[str]] | None = None
    for app in apps if isinstance(apps, list) else []:
        fields = set(app.get("subscribed_fields") or [])
        if best is None or len(fields & {*NEEDED_FIELDS}) > len(best[1] & {*NEEDED_FIELDS}):
            best = (str(app.get("name", "?")), fields)
    if best is None:
        problems += 1
        out.problem(
            "no app is subscribed to the page's events: "
            f"{SUBSCRIPTIONS_HINT}: {', '.join(NEEDED_FIELDS + RECOMMENDED_FIELDS)}"
        )
    else:
        name, fields = best
        missing = [f for f in NEEDED_FIELDS if f not in fields]
        if missing:
            problems += 1
            out.problem(
                f"the app {name} is not subscribed to {', '.join(missing)}: "
                f"{SUBSCRIPTIONS_HINT}: {', '.join(missing)}"
            )
        else:
            out.say(f"subscriptions: {name} receives {', '.join(NEEDED_FIELDS)}")
        for field in RECOMMENDED_FIELDS:
            if field not in fields:
                out.say(
                    f"recommended: subscribe {name} to {field} too (links with ?ref= "
                    f"reach the bot), {SUBSCRIPTIONS_HINT}"
                )

    found = await client.call("GET", "/me/messenger_profile", params={"fields": PROFILE_FIELDS})
    data = found.get("data") or []
    set_now = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
    absent = [f for f in PROFILE_FIELDS.split(",") if f not in set_now]
    if absent:
        problems += 1
        out.problem(f"{', '.join(absent)} not set: run iesaiste messenger setup")
    else:
        out.say("profile: Get Started, the greeting and the persistent menu are set")

    public = config.http_public_url
    if public.startswith("https://"):
        out.say(f"webhook URL for Meta's dashboard: {public.rstrip('/')}{WEBHOOK_PATH}")
    else:
        problems += 1
        out.problem(
            f"http.public_url = {public!r}: Meta delivers the webhook only to an https URL "
            f"with a valid certificate; set it, then enter <public_url>{WEBHOOK_PATH} "
            "in Meta's dashboard"
        )
    return 1 if problems else 0
