"""The Graph API over our aiohttp session: one call, its answer, or Meta's error.

Meta's errors are told apart by ``code`` and ``error_subcode`` in the body,
not by the HTTP status (a temporary fault and a blocked person both come as
400), so every failure the API explains becomes a ``GraphError`` carrying
them; callers map them to what they mean (``bot.channels.messenger_send``).
The token travels in the ``Authorization`` header, never in a URL, so no
URL we log or an exception repeats holds it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

CALL_SECONDS = 20.0  # one call at most; Meta's own answers take well under a second
USAGE_HEADER = "X-Business-Use-Case-Usage"


class GraphError(Exception):
    """Meta answered with an error (or not at all usefully: a 5xx without a body)."""

    def __init__(
        self,
        status: int,
        code: int,
        subcode: int,
        message: str,
        regain_seconds: float | None = None,
    ) -> None:
        super().__init__(f"Graph API error {code}/{subcode} (HTTP {status}): {message}")
        self.status = status
        self.code = code
        self.subcode = subcode
        self.message = message
        # X-Business-Use-Case-Usage's estimated time to regain access, when it says one.
        self.regain_seconds = regain_seconds


def regain_seconds(headers: Mapping[str, str]) -> float | None:
    """The longest ``estimated_time_to_regain_access`` (minutes) in the usage header, in
    seconds; None when the header is absent, malformed or says 0."""
    raw = headers.get(USAGE_HEADER)
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    minutes = 0.0
    if isinstance(usage, dict):
        for entries in usage.values():
            for entry in entries if isinstance(entries, list) else []:
                value = (
                    entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else 0
                )
                if isinstance(value, int | float) and not isinstance(value, bool):
                    minutes = max(minutes, float(value))
    return minutes * 60 if minutes > 0 else None


@dataclass(slots=True)
class GraphClient:
    """Calls under one page token and one Graph API version (``messenger.api_version``)."""

    session: aiohttp.ClientSession
    api_url: str  # https://graph.facebook.com, or a stand-in
    version: str  # v25.0
    token: str

    def url(self, path: str) -> str:
        return f"{self.api_url.rstrip('/')}/{self.version}/{path.lstrip('/')}"

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        form: aiohttp.FormData | None = None,
    ) -> dict[str, Any]:
        """One call; the answer's JSON object. Raises GraphError for an error Meta
        explains or an answer that is not one, and aiohttp's ClientError or TimeoutError
        when there is no answer."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.request(
            method,
            self.url(path),
            json=body if form is None else None,
            data=form,
            params=params,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=CALL_SECONDS),
        ) as response:
            raw = await response.read()
            status = response.status
            regain = regain_seconds(response.headers)
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise GraphError(status, 0, 0, "the answer is not a JSON object", regain)
        error = answer.get("error")
        if isinstance(error, dict):
            raise GraphError(
                status,
                _int(error.get("code")),
                _int(error.get("error_subcode")),
                str(error.get("message", ""))[:300],
                regain,
            )
        if status >= 400:
            raise GraphError(status, 0, 0, f"HTTP {status} without an error body", regain)
        return answer


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0
