"""``iesaiste proposals`` as an operator runs it: real processes on both databases.

The proposals are made through ``storage.proposals`` (as the chat makes them) with
the database opened by the test, which then closes it and runs the command.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from storage import db, proposals, staff
from storage.models import (
    AuditEntry,
    Delivery,
    Proposal,
    ProposalComment,
    ProposalEvent,
    Resident,
)
from storage.proposals import Draft
from storage.sessions import open_session
from tests.bot.test_cli import iesaiste
from tests.conftest import _forget_cached_sql


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[None]:
    """The test's own use of the database, closed before a command runs."""
    await db.open_database(url)
    try:
        yield
    finally:
        await db.close_database()
        _forget_cached_sql()


async def resident(user_id: str) -> Resident:
    async with open_session("telegram", user_id, "") as session:
        session.resident.onboarded_at = datetime.now(UTC)
        await session.resident.save()
        return session.resident


async def submit(author: Resident, text: str, category: str = "roads") -> Proposal:
    return await proposals.submit(
        author, Draft(category, "municipality", text, "lv", neighbourhood="centrs")
    )


async def one_line(*args: str, env: dict[str, str]) -> str:
    """The single line of a refused command, after checking exit code 2 and empty stdout."""
    code, out, err = await iesaiste(*args, env=env, timeout=30)
    assert (code, out) == (2, ""), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.removesuffix("\n")


async def test_list_shows_one_line_per_proposal_and_filters(database_url: str) -> None:
    env = {"IESAISTE_DATABASE_URL": database_url}
    async with opened(database_url):
        author = await resident("1")
        road = await submit(author, "Dziļa bedre pie skolas,\n ļoti dziļa")
        light = await submit(author, "Nedeg laterna", "lighting")
        await proposals.change_status(light.id, "under_review", actor="cli")
    today = datetime.now(ZoneInfo("Europe/Riga")).date().isoformat()  # as the CLI shows it
    code, out, err = await iesaiste("proposals", "list", env=env)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{light.reference}\tunder_review\tmunicipality\tlighting\t{today}\t1\tNedeg laterna",
        f"{road.reference}\treceived\tmunicipality\troads\t{today}\t1\t"
        "Dziļa bedre pie skolas, ļoti dziļa",
    ]
    code, out, _ = await iesaiste("proposals", "list", "--status", "received", env=env)
    assert (code, [line.split("\t")[0] for line in out.splitlines()]) == (0, [road.reference])
    code, out, _ = await iesaiste("proposals", "list", "--status", "rejected", env=env)
    assert (code, out) == (0, "no proposals\n")
    assert await one_line("proposals", "list", "--status", "lost", env=env) == (
        "iesaiste: --status = 'lost': expected one of received, under_review, planned, "
        "in_progress, accepted, partly_accepted, rejected, implemented, not_ours, duplicate, "
        "withdrawn"
    )
    assert await one_line("proposals", "list", "--department", "roads", env=env) == (
        "iesaiste: --department = 'roads': expected a department id (municipality)"
    )


async def test_set_status_tells_author_and_followers_once_and_is_audited(
    database_url: str,
) -> None:
    env = {"IESAISTE_DATABASE_URL": database_url}
    async with opened(database_url):
        author, neighbour = await resident("101"), await resident("102")
        proposal = await submit(author, "Bedre")
        await proposals.follow(proposal, neighbour)
    code, out, err = await iesaiste(
        "proposals",
        "set-status",
        proposal.reference.lower(),
        "planned",
        "--explanation",
        "Salabosim maijā.",
        "--expected",
        "2027-05-01",
        env=env,
    )
    assert (code, err) == (0, "")
    assert out == f"{proposal.reference}: received → planned; 2 account(s) will be told\n"
    async with opened(database_url):
        row = await Proposal.get(id=proposal.id)
        assert (row.status, row.explanation, row.expected_on) == (
            "planned",
            "Salabosim maijā.",
            date(2027, 5, 1),
        )
        event = await ProposalEvent.get(proposal_id=proposal.id, to_value="planned")
        assert (event.actor, event.from_value) == ("cli", "received")
        pushes = await Delivery.filter(source_kind=proposals.STATUS_PUSH).values_list(
            "external_id", "dedupe_key"
        )
        key = f"proposal:{proposal.id}:event:{event.id}"
        assert sorted(pushes) == [("101", key), ("102", key)]
        audit = await AuditEntry.get(action="proposal.status")
        assert audit.actor == "cli"
        assert audit.detail == {
            "proposal": proposal.reference,
            "from": "received",
            "to": "planned",
            "event": event.id,
        }


async def test_set_status_mistakes_are_one_line_and_change_nothing(database_url: str) -> None:
    env = {"IESAISTE_DATABASE_URL": database_url}
    async with opened(database_url):
        proposal = await submit(await resident("1"), "Bedre")
    ref = proposal.reference
    assert await one_line("proposals", "set-status", "P-1999-0001", "planned", env=env) == (
        "iesaiste: REF = 'P-1999-0001': expected the reference of a proposal, e.g. P-2026-0042"
    )
    assert await one_line("proposals", "set-status", ref, "fixed", env=env) == (
        "iesaiste: STATUS = 'fixed': expected one of received, under_review, planned, "
        "in_progress, accepted, partly_accepted, rejected, implemented, not_ours"
    )
    assert await one_line("proposals", "set-status", ref, "rejected", env=env) == (
        "iesaiste: --explanation = '': expected a public explanation: rejected must say "
        "how the proposal was taken into account"
    )
    refused = await one_line(
        "proposals", "set-status", ref, "planned", "--department", "parks", env=env
    )
    assert refused == "iesaiste: --department = 'parks': expected a department id (municipality)"
    assert await one_line(
        "proposals", "set-status", ref, "planned", "--expected", "May", env=env
    ) == ("iesaiste: --expected = 'May': expected a date such as 2027-05-01")
    async with opened(database_url):
        await proposals.withdraw(proposal, await resident("1"))
    assert await one_line("proposals", "set-status", ref, "under_review", env=env) == (
        f"iesaiste: REF = '{ref}': expected a proposal still open (it is withdrawn)"
    )
    async with opened(database_url):
        assert (
            await ProposalEvent.filter(proposal_id=proposal.id).count() == 2
        )  # received, withdrawn
        assert not await AuditEntry.filter(action="proposal.status").exists()


async def test_export_holds_open_data_only_unless_an_admin_takes_personal_data(
    database_url: str, tmp_path: Path
) -> None:
    env = {"IESAISTE_DATABASE_URL": database_url}
    async with opened(database_url):
        author = await resident("5550001")
        shown = await submit(author, "Bedre pie skolas")
        hidden = await submit(author, "Aizskarošs teksts")
        await Proposal.filter(id=hidden.id).update(
            hidden_at=datetime.now(UTC), hidden_reason="abuse"
        )
        await ProposalComment.create(proposal_id=shown.id, resident_id=author.id, text="SLEPENS")
        await staff.grant("telegram", "900", "admin", actor="test")
        await staff.grant("telegram", "901", "moderator", actor="test")

    outputs = {}
    for kind in ("json", "csv", "geojson"):
        code, out, err = await iesaiste("proposals", "export", "--format", kind, env=env)
        assert (code, err) == (0, ""), err
        outputs[kind] = out
        assert shown.reference in out and hidden.reference not in out
        assert "5550001" not in out and "SLEPENS" not in out and "author" not in out
    records = json.loads(outputs["json"])
    assert [r["service_request_id"] for r in records] == [shown.reference]
    assert records[0]["status"] == "open" and records[0]["supporters"] == 1
    rows = list(csv.DictReader(io.StringIO(outputs["csv"])))
    assert [r["service_request_id"] for r in rows] == [shown.reference]
    collection = json.loads(outputs["geojson"])
    assert collection["type"] == "FeatureCollection"
    assert [f["properties"] for f in collection["features"]] == records

    assert await one_line(
        "proposals", "export", "--format", "json", "--with-personal-data", env=env
    ) == ("iesaiste: --as = '': expected the admin account taking personal data (CHANNEL:ID)")
    assert await one_line(
        "proposals",
        "export",
        "--format",
        "json",
        "--with-personal-data",
        "--as",
        "telegram:901",
        env=env,
    ) == (
        "iesaiste: --as = 'telegram:901': expected an account with the admin role "
        "(iesaiste staff list)"
    )

    target = tmp_path / "personal.json"
    code, out, err = await iesaiste(
        "proposals",
        "export",
        "--format",
        "json",
        "--with-personal-data",
        "--as",
        "telegram:900",
        "--output",
        str(target),
        env=env,
    )
    assert (code, out, err) == (0, f"2 proposal(s) written to {target}\n", "")
    personal = {r["service_request_id"]: r for r in json.loads(target.read_text("utf-8"))}
    assert set(personal) == {shown.reference, hidden.reference}
    assert personal[shown.reference]["author_resident_id"] == author.id
    assert [c["text"] for c in personal[shown.reference]["comments"]] == ["SLEPENS"]
    assert personal[hidden.reference]["hidden_reason"] == "abuse"
    async with opened(database_url):
        audits = await AuditEntry.filter(action="proposal.export").order_by("id")
        assert [(a.detail["personal"], a.detail["as"]) for a in audits] == [
            (False, ""),
            (False, ""),
            (False, ""),
            (True, "telegram:900"),
        ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_unwritable_output_file_is_one_line(database_url: str, tmp_path: Path) -> None:
    env = {"IESAISTE_DATABASE_URL": database_url}
    target = tmp_path / "missing" / "out.csv"
    assert await one_line(
        "proposals", "export", "--format", "csv", "--output", str(target), env=env
    ) == (
        f"iesaiste: --output = '{target}': expected a file that can be written "
        "(No such file or directory)"
    )
