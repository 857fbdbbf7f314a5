"""Open data over HTTP: the read side of Open311 GeoReport v2, and a GeoJSON of the same.

Any Open311 client can read the municipality's proposals: ``services.json`` (the
categories), ``requests.json`` (filtered by GeoReport's ``service_request_id``,
``service_code``, ``start_date``, ``end_date`` and ``status``, paged with the common
``page`` / ``page_size`` extension) and ``requests/{id}.json``; ``requests.geojson``
is the same as a FeatureCollection for map tools. Read-only and free of personal
data (``storage.open_data`` decides what is public), so any origin may read it.
Only JSON is spoken: GeoReport's XML gets a 400 saying so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.core.config import Config
from bot.core.i18n import translator
from storage import open_data
from storage.open_data import Filters, PublicRequest
from storage.proposals import normalise_reference

PREFIX = "/open311/v2"
DESCRIPTION_LENGTH = 4000  # GeoReport's limit for a request's description
HEADERS = {
    # Open data, read-only, no cookies: any web page may read it.
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "public, max-age=60",
    "X-Content-Type-Options": "nosniff",
}


class BadRequest(Exception):
    """A query parameter GeoReport's client got wrong; the text says which and why."""


def _error(status: int, description: str) -> web.Response:
    return web.json_response(
        [{"code": status, "description": description}], status=status, headers=HEADERS
    )


def _stamp(moment: datetime | None, zone: ZoneInfo) -> str | None:
    """ISO 8601 with the offset, in the municipality's zone, as GeoReport asks."""
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment else None


def _day(value: date | None, zone: ZoneInfo) -> str | None:
    """A promised date as the start of that day in the municipality's zone."""
    return _stamp(datetime.combine(value, time(), zone), zone) if value else None


def photo_url(key: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/photos/{key}.jpg"


def services(config: Config) -> list[dict[str, Any]]:
    """The categories as GeoReport services, named in the municipality's language."""
    language = config.municipality.default_language
    found = []
    for category in config.proposals.categories:
        department = config.proposals.department(category.department)
        others = [
            name
            for code, name in sorted(category.names.items())
            if code != language and name and name != category.name(language)
        ]
        found.append(
            {
                "service_code": category.id,
                "service_name": category.name(language),
                "description": category.name(language),
                "metadata": False,
                "type": "realtime",
                "keywords": ", ".join(others),
                "group": department.name(language) if department else category.department,
            }
        )
    return found


def georeport(request: PublicRequest, config: Config, base_url: str) -> dict[str, Any]:
    """One request with GeoReport v2's fields, in the municipality's language and zone."""
    language = config.municipality.default_language
    zone = config.municipality.zone
    category = config.proposals.category(request.category)
    department = config.proposals.department(request.department)
    notes = request.explanation
    if request.merged_into:
        merged = translator(language).gettext(
            "Merged into {reference}.", reference=request.merged_into
        )
        notes = f"{merged} {notes}".strip()
    updated = request.resolved_at if request.closed and request.resolved_at else request.updated_at
    return {
        "service_request_id": request.reference,
        "status": "closed" if request.closed else "open",
        "status_notes": notes,
        "service_name": category.name(language) if category else request.category,
        "service_code": request.category,
        "description": request.text[:DESCRIPTION_LENGTH],
        "agency_responsible": department.name(language) if department else request.department,
        "service_notice": "",
        "requested_datetime": _stamp(request.created_at, zone),
        "updated_datetime": _stamp(max(updated, request.created_at), zone),
        "expected_datetime": _day(request.expected_on, zone),
        "address": request.address,
        "address_id": "",
        "zipcode": "",
        "lat": request.latitude,
        "long": request.longitude,
        "media_url": photo_url(request.photo_keys[0], base_url) if request.photo_keys else "",
    }


def feature(request: PublicRequest, config: Config, base_url: str) -> dict[str, Any]:
    """A GeoJSON Feature: the same fields as properties, the place as a Point (or none)."""
    has_place = request.latitude is not None and request.longitude is not None
    return {
        "type": "Feature",
        "id": request.reference,
        "geometry": {"type": "Point", "coordinates": [request.longitude, request.latitude]}
        if has_place
        else None,
        "properties": georeport(request, config, base_url),
    }


def feature_collection(
    requests: list[PublicRequest], config: Config, base_url: str
) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [feature(r, config, base_url) for r in requests],
    }


def _moment(name: str, raw: str, zone: ZoneInfo, *, end: bool) -> datetime:
    """2026-12-01, 2026-12-01T10:00 (the municipality's time) or with an offset.
    A bare ``end_date`` day counts in whole."""
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise BadRequest(
            f"{name} must be a W3C date and time such as 2026-12-01T10:00:00+02:00 "
            f"or a date such as 2026-12-01, not {raw!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if end and len(raw.strip()) == len("2026-12-01"):
        moment += timedelta(days=1)
    return moment


def _whole(name: str, raw: str | None, default: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    # ASCII digits only: str.isdigit() takes "²", which int() refuses.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or not 1 <= int(raw) <= high:
        raise BadRequest(f"{name} must be a whole number from 1 to {high}, not {raw!r}")
    return int(raw)


def _listed(raw: str | None) -> list[str]:
    return [item.strip() for item in (raw or "").split(",") if item.strip()]


def filters(query: Mapping[str, str], config: Config) -> Filters:
    """GeoReport's query parameters as filters; BadRequest names the one that is wrong.
    Parameters it does not know (``jurisdiction_id``, ``api_key``) are ignored."""
    zone = config.municipality.zone
    references = []
    for raw in _listed(query.get("service_request_id")):
        reference = normalise_reference(raw)
        if not reference:
            raise BadRequest(
                f"service_request_id must be references such as P-2026-0042, not {raw!r}"
            )
        references.append(reference)
    codes = _listed(query.get("service_code"))
    known = {c.id for c in config.proposals.categories}
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise BadRequest(
            f"unknown service_code {', '.join(unknown)} (services.json lists them: "
            f"{', '.join(sorted(known))})"
        )
    statuses = {s.lower() for s in _listed(query.get("status"))}
    if not statuses <= {"open", "closed"}:
        raise BadRequest(f"status must be open or closed, not {query.get('status')!r}")
    start = end = None
    if query.get("start_date"):
        start = _moment("start_date", query["start_date"], zone, end=False)
    if query.get("end_date"):
        end = _moment("end_date", query["end_date"], zone, end=True)
    if start is not None and end is not None and end < start:
        raise BadRequest("end_date must not be before start_date")
    return Filters(
        references=references,
        service_codes=codes,
        start=start,
        end=end,
        closed=None if len(statuses) != 1 else statuses == {"closed"},
        page=_whole("page", query.get("page"), 1, 1_000_000),
        page_size=_whole(
            "page_size",
            query.get("page_size"),
            open_data.DEFAULT_PAGE_SIZE,
            open_data.MAX_PAGE_SIZE,
        ),
    )


class Open311:
    """The routes, with the configuration they answer from."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def base_url(self, request: web.Request) -> str:
        """Where photos are fetched: ``http.public_url``, else the address asked."""
        return self.config.http_public_url or str(request.url.origin())

    def _json(
        self, body: object, content_type: str = "application/json", **headers: str
    ) -> web.Response:
        return web.Response(
            text=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
            content_type=content_type,
            charset="utf-8",
            headers={**HEADERS, **headers},
        )

    async def services(self, request: web.Request) -> web.Response:
        if request.match_info["format"] != "json":
            return _error(400, "format not supported: only .json")
        return self._json(services(self.config))

    async def requests(self, request: web.Request) -> web.Response:
        kind = request.match_info["format"]
        if kind not in ("json", "geojson"):
            return _error(400, "format not supported: .json or .geojson")
        try:
            wanted = filters(request.query, self.config)
        except BadRequest as error:
            return _error(400, str(error))
        found = await open_data.requests(wanted)
        headers = {}
        if len(found) == wanted.page_size and not wanted.references:
            following = request.url.update_query(page=str(wanted.page + 1))
            headers["Link"] = f'<{following}>; rel="next"'
        return self._answer(kind, found, request, headers)

    async def one(self, request: web.Request) -> web.Response:
        kind = request.match_info["format"]
        if kind not in ("json", "geojson"):
            return _error(400, "format not supported: .json or .geojson")
        raw = request.match_info["id"]
        reference = normalise_reference(raw)
        found = await open_data.request(reference) if reference else None
        if found is None:
            return _error(404, f"no service request {raw!r}")
        return self._answer(kind, [found], request, {})

    def _answer(
        self, kind: str, found: list[PublicRequest], request: web.Request, headers: dict[str, str]
    ) -> web.Response:
        base = self.base_url(request)
        if kind == "geojson":
            return self._json(
                feature_collection(found, self.config, base), "application/geo+json", **headers
            )
        return self._json([georeport(r, self.config, base) for r in found], **headers)


def add_routes(app: web.Application, config: Config) -> None:
    """``GET /open311/v2/…``; any suffix but .json (and .geojson for requests) is a 400."""
    routes = Open311(config)
    app.router.add_get(f"{PREFIX}/services.{{format}}", routes.services)
    app.router.add_get(f"{PREFIX}/requests.{{format}}", routes.requests)
    app.router.add_get(f"{PREFIX}/requests/{{id}}.{{format}}", routes.one)
