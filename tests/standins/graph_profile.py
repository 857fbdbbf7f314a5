"""The Messenger Profile API, ``/me`` and ``/{page-id}/subscribed_apps``, strict as Meta.

Registered on a ``GraphCore`` (``tests.standins.graph_core``), so the token and the
version are checked there. What Meta refuses is refused here with its code 100:
a greeting over 160 characters, a localized array without its ``default`` locale, a
persistent menu of more than 20 items, a title over 30 characters, a postback payload
over 1,000, a persistent menu while no Get Started button is set, an unknown field.
``rate_limit=True`` turns on the Profile API's 10 calls per 10 minutes (613).
Sources: ``/work/shared/research/messenger-platform.md`` §3 and §7.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.standins.graph_core import PAGE_ID, GraphCore, GraphFault, JSONDict

APP_ID = "987654321012345"
APP_NAME = "Iesaiste"
PAGE_NAME = "Demo novads"
PROFILE_FIELDS = (
    "get_started",
    "greeting",
    "persistent_menu",
    "ice_breakers",
    "whitelisted_domains",
)
WEBHOOK_FIELDS = (
    "messages",
    "message_echoes",
    "message_deliveries",
    "message_reads",
    "message_reactions",
    "message_edits",
    "messaging_postbacks",
    "messaging_optins",
    "messaging_referrals",
    "messaging_handovers",
    "messaging_policy_enforcement",
    "messaging_account_linking",
    "standby",
)
GREETING_LENGTH = 160
MENU_ITEMS = 20
TITLE_LENGTH = 30
PAYLOAD_LENGTH = 1000
RATE_CALLS, RATE_SECONDS = 10, 600.0


def _invalid(message: str) -> GraphFault:
    return GraphFault(100, f"(#100) {message}")


@dataclass
class GraphProfile:
    """One page: its name, the apps subscribed to it, its Messenger profile."""

    core: GraphCore
    page_name: str = PAGE_NAME
    page_id: str = PAGE_ID
    # app id -> (app name, subscribed fields); empty: no app subscribed yet
    apps: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    profile: JSONDict = field(default_factory=dict)
    rate_limit: bool = False
    _profile_calls: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.core.route("GET", "/me", self._me)
        self.core.route("GET", "/me/messenger_profile", self._get_profile)
        self.core.route("POST", "/me/messenger_profile", self._set_profile)
        self.core.route("DELETE", "/me/messenger_profile", self._delete_profile)
        self.core.route("GET", "/{page}/subscribed_apps", self._subscribed)
        self.core.route("POST", "/{page}/subscribed_apps", self._subscribe)

    def subscribe(self, *fields: str, app_id: str = APP_ID, name: str = APP_NAME) -> None:
        """What the dashboard's "Add subscriptions" does."""
        self.apps[app_id] = (name, list(fields))

    # --- /me and subscribed_apps -----------------------------------------------------
    async def _me(self, request: web.Request, call: JSONDict) -> web.Response:
        return web.json_response({"name": self.page_name, "id": self.page_id})

    def _page(self, call: JSONDict) -> None:
        if call["params"]["page"] not in (self.page_id, "me"):
            raise GraphFault(
                100,
                f"Unsupported get request. Object with ID '{call['params']['page']}' does not "
                "exist, cannot be loaded due to missing permissions, or does not support this "
                "operation",
                33,
            )

    async def _subscribed(self, request: web.Request, call: JSONDict) -> web.Response:
        self._page(call)
        data = [
            {
                "category": "Business",
                "link": "https://iesaiste.example/",
                "name": name,
                "id": app_id,
                "subscribed_fields": fields,
            }
            for app_id, (name, fields) in self.apps.items()
        ]
        return web.json_response({"data": data})

    async def _subscribe(self, request: web.Request, call: JSONDict) -> web.Response:
        self._page(call)
        raw = call["query"].get("subscribed_fields") or (call["body"] or {}).get(
            "subscribed_fields", ""
        )
        fields = raw if isinstance(raw, list) else [f for f in str(raw).split(",") if f]
        if not fields:
            raise _invalid("The parameter subscribed_fields is required.")
        for name in fields:
            if name not in WEBHOOK_FIELDS:
                raise _invalid(
                    f'Param subscribed_fields[{fields.index(name)}] got "{name}", not a '
                    "webhook field of a page"
                )
        self.subscribe(*fields)
        return web.json_response({"success": True})

    # --- the Messenger Profile API ---------------------------------------------------
    def _count_profile_call(self) -> None:
        now = time.monotonic()
        self._profile_calls = [t for t in self._profile_calls if now - t < RATE_SECONDS]
        if self.rate_limit and len(self._profile_calls) >= RATE_CALLS:
            raise GraphFault(613, "Calls to this api have exceeded the rate limit.")
        self._profile_calls.append(now)

    async def _get_profile(self, request: web.Request, call: JSONDict) -> web.Response:
        self._count_profile_call()
        wanted = [f for f in call["query"].get("fields", "").split(",") if f]
        if not wanted:
            raise _invalid("The parameter fields is required.")
        for name in wanted:
            if name not in PROFILE_FIELDS:
                raise _invalid(
                    f'Param fields[{wanted.index(name)}] got "{name}", not a Messenger '
                    "profile field"
                )
        found = {name: self.profile[name] for name in wanted if name in self.profile}
        return web.json_response({"data": [found] if found else []})

    async def _set_profile(self, request: web.Request, call: JSONDict) -> web.Response:
        self._count_profile_call()
        body = call["body"]
        if not isinstance(body, dict) or not body:
            raise _invalid("Requires one of the params: " + ",".join(PROFILE_FIELDS))
        for name in body:
            if name not in PROFILE_FIELDS:
                raise _invalid(f"param {name} is not a valid Messenger profile field")
        if "get_started" in body:
            self._check_get_started(body["get_started"])
        if "greeting" in body:
            self._check_localized("greeting", body["greeting"], self._check_greeting)
        if "persistent_menu" in body:
            if "get_started" not in body and "get_started" not in self.profile:
                raise _invalid(
                    "You must set a Get Started button if you also wish to use persistent menu."
                )
            self._check_localized("persistent_menu", body["persistent_menu"], self._check_menu)
        self.profile.update(body)
        return web.json_response({"result": "success"})

    async def _delete_profile(self, request: web.Request, call: JSONDict) -> web.Response:
        self._count_profile_call()
        fields = (call["body"] or {}).get("fields")
        if not isinstance(fields, list) or not fields:
            raise _invalid("The parameter fields is required.")
        for name in fields:
            self.profile.pop(name, None)
        return web.json_response({"result": "success"})

    @staticmethod
    def _check_get_started(value: Any) -> None:
        payload = value.get("payload") if isinstance(value, dict) else None
        if not isinstance(payload, str) or not payload:
            raise _invalid("param get_started[payload] is required")
        if len(payload) > PAYLOAD_LENGTH:
            raise _invalid(f"param get_started[payload] must be at most {PAYLOAD_LENGTH} chars")

    @staticmethod
    def _check_localized(name: str, value: Any, check: Any) -> None:
        if not isinstance(value, list) or not value:
            raise _invalid(f"param {name} must be a non-empty array")
        locales = [item.get("locale") if isinstance(item, dict) else None for item in value]
        if "default" not in locales:
            raise _invalid(f"param {name} must contain a default locale")
        if len(set(locales)) != len(locales):
            raise _invalid(f"param {name} has a locale more than once")
        for index, item in enumerate(value):
            check(f"{name}[{index}]", item)

    @staticmethod
    def _check_greeting(where: str, item: JSONDict) -> None:
        text = item.get("text")
        if not isinstance(text, str) or not text:
            raise _invalid(f"param {where}[text] is required")
        if len(text) > GREETING_LENGTH:
            raise _invalid(f"param {where}[text] must be at most {GREETING_LENGTH} chars")

    @staticmethod
    def _check_menu(where: str, item: JSONDict) -> None:
        actions = item.get("call_to_actions")
        if not isinstance(actions, list) or not actions:
            raise _invalid(f"param {where}[call_to_actions] is required")
        if len(actions) > MENU_ITEMS:
            raise _invalid(f"param {where}[call_to_actions] has too many elements")
        if not isinstance(item.get("composer_input_disabled", False), bool):
            raise _invalid(f"param {where}[composer_input_disabled] must be a boolean")
        for index, action in enumerate(actions):
            at = f"{where}[call_to_actions][{index}]"
            if not isinstance(action, dict):
                raise _invalid(f"param {at} must be an object")
            title = action.get("title")
            if not isinstance(title, str) or not title:
                raise _invalid(f"param {at}[title] is required")
            if len(title) > TITLE_LENGTH:
                raise _invalid(f"param {at}[title] must be at most {TITLE_LENGTH} chars")
            kind = action.get("type")
            if kind == "postback":
                payload = action.get("payload")
                if not isinstance(payload, str) or not payload:
                    raise _invalid(f"param {at}[payload] is required")
                if len(payload) > PAYLOAD_LENGTH:
                    raise _invalid(f"param {at}[payload] must be at most {PAYLOAD_LENGTH} chars")
            elif kind == "web_url":
                if not str(action.get("url", "")).startswith(("https://", "http://")):
                    raise _invalid(f"param {at}[url] must be a valid URL")
            elif kind == "nested":
                raise _invalid("Nested menus are not supported")
            else:
                raise _invalid(f"param {at}[type] must be one of {{web_url, postback}}")
