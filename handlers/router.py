"""Commands and global buttons, declared next to their handlers.

Routers nest with ``include``; the first match wins. A route may require a
staff role: anyone without it gets the ordinary "unknown command" answer, so
a resident cannot even learn that a staff action exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dialogs.context import Ctx

Handler = Callable[[Ctx], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    roles: frozenset[str] | None = None  # None: anyone
    # True for what must work before onboarding is finished (/help, /language…)
    anytime: bool = False


@dataclass(slots=True)
class Router:
    commands: dict[str, Route] = field(default_factory=dict)
    buttons: dict[str, Route] = field(default_factory=dict)  # payload prefix → route
    children: list[Router] = field(default_factory=list)

    def command(
        self, *names: str, roles: set[str] | None = None, anytime: bool = False
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            route = Route(handler, frozenset(roles) if roles else None, anytime)
            for name in names:
                self.commands[name] = route
            return handler

        return register

    def button(
        self, prefix: str, *, roles: set[str] | None = None, anytime: bool = False
    ) -> Callable[[Handler], Handler]:
        """Route payloads equal to ``prefix`` or starting with ``prefix + ':'``."""

        def register(handler: Handler) -> Handler:
            self.buttons[prefix] = Route(handler, frozenset(roles) if roles else None, anytime)
            return handler

        return register

    def include(self, router: Router) -> None:
        self.children.append(router)

    def find_command(self, name: str) -> Route | None:
        if name in self.commands:
            return self.commands[name]
        return next((r for c in self.children if (r := c.find_command(name))), None)

    def find_button(self, payload: str) -> Route | None:
        for prefix, route in self.buttons.items():
            if payload == prefix or payload.startswith(prefix + ":"):
                return route
        return next((r for c in self.children if (r := c.find_button(payload))), None)
