"""Open data over real HTTP: Open311 GeoReport v2 as a client reads it, and its GeoJSON.

The whole bot runs (``start_bot``) on SQLite and PostgreSQL; proposals are made
through ``storage.proposals`` as the chat makes them. Every answer is checked
against GeoReport v2's field list, a small client that knows only the standard
parameters and the paging extension reads everything, and no answer carries a
hidden proposal, a resident's or a platform's id, or a comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import Runtime
from storage import proposals
from storage.models import Proposal, ProposalComment, ProposalPhoto, Resident
from storage.proposals import Draft
from storage.sessions import open_session
from tests.conftest import RuntimeFactory

PUBLIC_URL = "https://iesaiste.example.lv"
# GeoReport v2 "GET Service Requests": every field, and the JSON types it may have.
STRING, NUMBER, NULL = (str,), (int, float), (type(None),)
REQUEST_FIELDS: dict[str, tuple[type, ...]] = {
    "service_request_id": STRING,
    "status": STRING,
    "status_notes": STRING,
    "service_name": STRING,
    "service_code": STRING,
    "description": STRING,
    "agency_responsible": STRING,
    "service_notice": STRING,
    "requested_datetime": STRING,
    "updated_datetime": STRING,
    "expected_datetime": STRING + NULL,
    "address": STRING,
    "address_id": STRING,
    "zipcode": STRING,
    "lat": NUMBER + NULL,
    "long": NUMBER + NULL,
    "media_url": STRING,
}
SERVICE_FIELDS: dict[str, tuple[type, ...]] = {
    "service_code": STRING,
    "service_name": STRING,
    "description": STRING,
    "metadata": (bool,),
    "type": STRING,
    "keywords": STRING,
    "group": STRING,
}
W3C = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


@pytest.fixture
def public_url_config(tmp_path: Path) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'[http]\npublic_url = "{PUBLIC_URL}"\n', encoding="utf-8")
    return str(path)


async def start(start_bot: RuntimeFactory, config_path: str) -> tuple[Runtime, str]:
    runtime = await start_bot(config_path)
    return runtime, f"http://127.0.0.1:{runtime.config.http_port}/open311/v2"


async def resident(user_id: str) -> Resident:
    async with open_session("telegram", user_id, "") as session:
        session.resident.onboarded_at = datetime.now(UTC)
        await session.resident.save()
        return session.resident


async def submit(author: Resident, text: str, category: str = "roads", **more: Any) -> Proposal:
    values: dict[str, Any] = {
        "category": category,
        "department": "municipality",
        "text": text,
        "language": "lv",
        "neighbourhood": "centrs",
    }
    values.update(more)
    return await proposals.submit(author, Draft(**values))


async def get(url: str, **params: str) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, params=params) as response:
            return response.status, await response.json(content_type=None), response.headers


def check_request_fields(item: dict[str, Any]) -> None:
    assert set(item) == set(REQUEST_FIELDS), set(item) ^ set(REQUEST_FIELDS)
    for name, types in REQUEST_FIELDS.items():
        assert isinstance(item[name], types), (name, item[name])
    assert item["status"] in ("open", "closed")
    for name in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert item[name] is None or W3C.match(item[name]), (name, item[name])
    assert len(item["description"]) <= 4000


@dataclass
class Open311Client:
    """What an existing Open311 client does: the standard parameters and page/page_size."""

    endpoint: str
    page_size: int = 2
    pages_read: int = field(default=0)

    async def services(self) -> list[dict[str, Any]]:
        status, body, _ = await get(f"{self.endpoint}/services.json")
        assert status == 200
        return list(body)

    async def all_requests(self, **params: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            status, body, _ = await get(
                f"{self.endpoint}/requests.json",
                **params,
                page=str(page),
                page_size=str(self.page_size),
            )
            assert status == 200, body
            self.pages_read += 1
            found.extend(body)
            if len(body) < self.page_size:
                return found
            page += 1

    async def request(self, reference: str) -> dict[str, Any]:
        status, body, _ = await get(f"{self.endpoint}/requests/{reference}.json")
        assert status == 200, body
        assert len(body) == 1
        return dict(body[0])


async def test_an_open311_client_reads_services_and_every_request_page_by_page(
    start_bot: RuntimeFactory, public_url_config: str
) -> None:
    _, endpoint = await start(start_bot, public_url_config)
    author = await resident("5551234")
    road = await submit(
        author, "Dziļa bedre pie skolas", latitude=56.95, longitude=24.11, address="Skolas iela 1"
    )
    light = await submit(author, "Nedeg laterna parkā", category="lighting")
    bench = await submit(author, "Salauzts sols", category="greenery")
    await proposals.change_status(
        light.id, "implemented", actor="cli", explanation="Laterna nomainīta."
    )
    await proposals.change_status(
        road.id,
        "planned",
        actor="cli",
        explanation="Salabosim maijā.",
        expected_on=(datetime.now(UTC) + timedelta(days=30)).date(),
    )
    await ProposalPhoto.create(proposal_id=road.id, key="d" * 64, approved=False)
    await ProposalPhoto.create(proposal_id=road.id, key="e" * 64, approved=True)
    client = Open311Client(endpoint)

    services = await client.services()
    assert [s["service_code"] for s in services][:3] == ["roads", "lighting", "greenery"]
    for service in services:
        assert set(service) == set(SERVICE_FIELDS)
        for name, types in SERVICE_FIELDS.items():
            assert isinstance(service[name], types), (name, service[name])
        assert (service["metadata"], service["type"]) == (False, "realtime")
    assert services[0]["service_name"] == "Ceļi un ietves"

    everything = await client.all_requests()
    assert client.pages_read == 2  # 2 + 1
    assert [r["service_request_id"] for r in everything] == [
        bench.reference,
        light.reference,
        road.reference,
    ]
    for item in everything:
        check_request_fields(item)
    by_id = {r["service_request_id"]: r for r in everything}
    planned = by_id[road.reference]
    assert planned["status"] == "open"
    assert planned["status_notes"] == "Salabosim maijā."
    assert (planned["lat"], planned["long"], planned["address"]) == (56.95, 24.11, "Skolas iela 1")
    assert planned["expected_datetime"] is not None
    assert planned["media_url"] == f"{PUBLIC_URL}/photos/{'e' * 64}.jpg"
    assert planned["agency_responsible"] == "Pašvaldība"
    assert (planned["service_code"], planned["service_name"]) == ("roads", "Ceļi un ietves")
    fixed = by_id[light.reference]
    assert (fixed["status"], fixed["status_notes"]) == ("closed", "Laterna nomainīta.")
    assert by_id[bench.reference]["lat"] is None and by_id[bench.reference]["media_url"] == ""

    assert [r["service_request_id"] for r in await client.all_requests(status="closed")] == [
        light.reference
    ]
    assert [
        r["service_request_id"] for r in await client.all_requests(service_code="roads,greenery")
    ] == [bench.reference, road.reference]
    today = datetime.now(UTC).date()
    assert len(await client.all_requests(start_date=today.isoformat())) == 3
    yesterday = (today - timedelta(days=1)).isoformat()
    assert await client.all_requests(end_date=f"{yesterday}T00:00:00Z") == []
    listed = await client.all_requests(
        service_request_id=f"{road.reference},{light.reference}", status="closed"
    )
    assert {r["service_request_id"] for r in listed} == {road.reference, light.reference}
    assert await client.request(road.reference) == planned


async def test_hidden_proposals_identities_and_comments_appear_nowhere(
    start_bot: RuntimeFactory, public_url_config: str
) -> None:
    _, endpoint = await start(start_bot, public_url_config)
    author = await resident("7770001")
    shown = await submit(author, "Bedre pie tirgus", latitude=56.9, longitude=24.1)
    hidden = await submit(author, "Aizskarošs teksts", latitude=56.91, longitude=24.1)
    await Proposal.filter(id=hidden.id).update(hidden_at=datetime.now(UTC), hidden_reason="abuse")
    await ProposalComment.create(proposal_id=shown.id, resident_id=author.id, text="SLEPENS")
    bodies = []
    for path in ("requests.json", "requests.geojson", f"requests/{shown.reference}.json"):
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{endpoint}/{path}") as response:
                assert response.status == 200
                assert response.headers["Access-Control-Allow-Origin"] == "*"
                bodies.append(await response.text())
    for body in bodies:
        assert shown.reference in body
        assert hidden.reference not in body and "Aizskarošs" not in body and "abuse" not in body
        assert "7770001" not in body and "SLEPENS" not in body
        assert f'"{author.id}"' not in body and "author" not in body
    status, body, _ = await get(f"{endpoint}/requests/{hidden.reference}.json")
    assert (status, body) == (
        404,
        [{"code": 404, "description": f"no service request '{hidden.reference}'"}],
    )


async def test_geojson_is_a_feature_collection_of_the_same_requests(
    start_bot: RuntimeFactory, public_url_config: str
) -> None:
    _, endpoint = await start(start_bot, public_url_config)
    author = await resident("1")
    placed = await submit(author, "Bedre", latitude=56.95, longitude=24.11)
    unplaced = await submit(author, "Ideja par parku", category="idea")
    kept = await submit(author, "Bedre pie skolas")
    await Proposal.filter(id=unplaced.id).update(status="duplicate", duplicate_of_id=kept.id)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{endpoint}/requests.geojson") as response:
            assert response.content_type == "application/geo+json"
            collection = await response.json(content_type=None)
    assert collection["type"] == "FeatureCollection"
    features = {f["id"]: f for f in collection["features"]}
    assert set(features) == {placed.reference, unplaced.reference, kept.reference}
    for feature in features.values():
        assert feature["type"] == "Feature"
        check_request_fields(feature["properties"])
    assert features[placed.reference]["geometry"] == {
        "type": "Point",
        "coordinates": [24.11, 56.95],
    }
    assert features[unplaced.reference]["geometry"] is None
    merged = features[unplaced.reference]["properties"]
    assert (merged["status"], merged["status_notes"]) == (
        "closed",
        f"Apvienots ar {kept.reference}.",
    )
    _, as_json, _ = await get(f"{endpoint}/requests.json")
    assert [f["properties"] for f in collection["features"]] == as_json


# The fixture's runtime needs a database; these answers do not read one much.
@pytest.mark.parametrize(
    ("path", "params", "status", "description"),
    [
        ("requests.json", {"start_date": "yesterday"}, 400, "start_date must be a W3C date"),
        ("requests.json", {"end_date": "2026-13-01"}, 400, "end_date must be a W3C date"),
        (
            "requests.json",
            {"start_date": "2026-12-02", "end_date": "2026-12-01T00:00:00+02:00"},
            400,
            "end_date must not be before start_date",
        ),
        ("requests.json", {"status": "pending"}, 400, "status must be open or closed"),
        ("requests.json", {"service_code": "unicorns"}, 400, "unknown service_code unicorns"),
        ("requests.json", {"page_size": "5000"}, 400, "page_size must be a whole number"),
        ("requests.json", {"page": "0"}, 400, "page must be a whole number"),
        ("requests.json", {"page": "²"}, 400, "page must be a whole number"),
        ("requests.json", {"page_size": "9" * 400}, 400, "page_size must be a whole number"),
        ("requests.json", {"service_request_id": "42"}, 400, "service_request_id must be"),
        ("requests.xml", {}, 400, "format not supported"),
        ("services.xml", {}, 400, "format not supported"),
        ("requests/P-2026-0001.xml", {}, 400, "format not supported"),
        ("requests/P-1999-0999.json", {}, 404, "no service request"),
    ],
)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_bad_query_gets_georeports_error_list_with_its_status(
    start_bot: RuntimeFactory,
    public_url_config: str,
    path: str,
    params: dict[str, str],
    status: int,
    description: str,
) -> None:
    _, endpoint = await start(start_bot, public_url_config)
    got, body, headers = await get(f"{endpoint}/{path}", **params)
    assert got == status
    assert isinstance(body, list) and len(body) == 1
    assert body[0]["code"] == status and body[0]["description"].startswith(description), body
    assert headers["Access-Control-Allow-Origin"] == "*"
