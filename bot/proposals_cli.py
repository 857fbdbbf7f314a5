"""``iesaiste proposals``: list, set a status, export, from the operator's shell.

A status set here goes through ``storage.proposals.change_status`` exactly as in
the chat's review queue: the history records actor "cli", the audit log records
the command, and the author and every follower get the same push (delivered by
the running bot). An export holds what open data holds; with
``--with-personal-data`` and an admin named by ``--as`` it adds who wrote each
proposal (the resident's row id and language), hidden ones, and the comments,
and the audit log records who took it. Operator mistakes are ConfigErrors: one
line naming the argument, exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from bot.core.config import Config, ConfigError, parse_user_ref
from storage.proposal_states import DUPLICATE, NEEDS_EXPLANATION, STATUSES, WITHDRAWN

FORMATS = ("csv", "json", "geojson")
LISTED_STATUSES = (*STATUSES, DUPLICATE, WITHDRAWN)
EXPLANATION_LENGTH = 4000


def add_parser(commands: Any) -> None:
    """The ``proposals`` sub-commands, on the ``iesaiste`` parser's sub-parsers."""
    proposals = commands.add_parser(
        "proposals", help="list proposals, set a status, export open data"
    ).add_subparsers(dest="proposals_command", required=True, metavar="{list,set-status,export}")
    listing = proposals.add_parser("list", help="one line per proposal, newest first")
    listing.add_argument("--status", default="", help="STATUS[,STATUS…] (default: all)")
    listing.add_argument("--department", default="", help="a department id (default: all)")
    setting = proposals.add_parser(
        "set-status", help="set a proposal's status; its author and followers are told"
    )
    setting.add_argument("reference", metavar="REF", help="e.g. P-2026-0042")
    setting.add_argument("status", metavar="STATUS", help=", ".join(STATUSES))
    setting.add_argument(
        "--explanation",
        default="",
        help="the public explanation (required for " + ", ".join(sorted(NEEDS_EXPLANATION)) + ")",
    )
    setting.add_argument("--expected", default="", help="the promised date, e.g. 2027-05-01")
    setting.add_argument("--department", default="", help="move it to this department")
    setting.add_argument("--passed-to", default="", help="not_ours: the body it was passed to")
    export = proposals.add_parser("export", help="every public proposal as open data")
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument("--output", default="", metavar="FILE", help="default: standard output")
    export.add_argument(
        "--with-personal-data",
        action="store_true",
        help="add authors, hidden proposals and comments (needs --as an admin)",
    )
    export.add_argument("--as", dest="as_account", default="", metavar="CHANNEL:ID")


def check(config: Config, args: argparse.Namespace) -> None:
    """What can be checked before the database is opened; ConfigError names the argument."""
    command = args.proposals_command
    if command == "list":
        _statuses(args.status)
        _department(config, "--department", args.department)
    elif command == "set-status":
        _status(args.status)
        _department(config, "--department", args.department)
        _explanation(args.status, args.explanation)
        _expected(args.expected)
    elif args.with_personal_data and not args.as_account:
        raise ConfigError("--as", "", "the admin account taking personal data (CHANNEL:ID)")
    elif args.as_account:
        parse_user_ref("--as", args.as_account)


def _statuses(raw: str) -> list[str]:
    wanted = [s.strip() for s in raw.split(",") if s.strip()]
    for status in wanted:
        if status not in LISTED_STATUSES:
            raise ConfigError("--status", status, f"one of {', '.join(LISTED_STATUSES)}")
    return wanted


def _status(raw: str) -> str:
    if raw not in STATUSES:
        raise ConfigError("STATUS", raw, f"one of {', '.join(STATUSES)}")
    return raw


def _department(config: Config, key: str, raw: str) -> str:
    if raw and config.proposals.department(raw) is None:
        known = ", ".join(d.id for d in config.proposals.departments)
        raise ConfigError(key, raw, f"a department id ({known})")
    return raw


def _explanation(status: str, raw: str) -> str:
    text = raw.strip()
    if status in NEEDS_EXPLANATION and not text:
        raise ConfigError(
            "--explanation",
            raw,
            f"a public explanation: {status} must say how the proposal was taken into account",
        )
    if len(text) > EXPLANATION_LENGTH:
        raise ConfigError(
            "--explanation", text[:20] + "…", f"at most {EXPLANATION_LENGTH} characters"
        )
    return text


def _expected(raw: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ConfigError("--expected", raw, "a date such as 2027-05-01") from None


async def run(config: Config, args: argparse.Namespace) -> int:
    command = args.proposals_command
    if command == "list":
        return await _list(config, args)
    if command == "set-status":
        return await _set_status(config, args)
    return await _export(config, args)


async def _list(config: Config, args: argparse.Namespace) -> int:
    from dialogs.proposal_words import snippet
    from storage import open_data

    rows = await open_data.listing(_statuses(args.status), args.department)
    if not rows:
        print("no proposals")
    zone = config.municipality.zone
    for row in rows:
        status = row.status + (" (hidden)" if row.hidden_at else "")
        created = row.created_at.astimezone(zone)
        print(
            f"{row.reference}\t{status}\t{row.department}\t{row.category}\t"
            f"{created:%Y-%m-%d}\t{row.supporters}\t{snippet(row.text)}"
        )
    return 0


async def _set_status(config: Config, args: argparse.Namespace) -> int:
    from storage import proposals, staff
    from storage.proposals import ProposalError

    found = await proposals.by_reference(args.reference)
    if found is None:
        raise ConfigError("REF", args.reference, "the reference of a proposal, e.g. P-2026-0042")
    before = found.status
    try:
        event = await proposals.change_status(
            found.id,
            args.status,
            actor="cli",
            explanation=_explanation(args.status, args.explanation),
            expected_on=_expected(args.expected),
            passed_to=args.passed_to,
            department=args.department,
            ask_fixed_after=config.proposals.ask_fixed_after,
        )
    except ProposalError as error:
        if error.reason == "closed":
            raise ConfigError(
                "REF", found.reference, f"a proposal still open (it is {found.status})"
            ) from None
        raise
    await staff.record(
        "cli",
        "proposal.status",
        {
            "proposal": found.reference,
            "from": before,
            "to": args.status,
            "event": event.id,
            **({"department": args.department} if args.department else {}),
        },
    )
    told = len(await proposals.followers(found.id))
    print(f"{found.reference}: {before} → {args.status}; {told} account(s) will be told")
    return 0


async def _export(config: Config, args: argparse.Namespace) -> int:
    from bot.open311 import feature_collection, georeport
    from storage import open_data, staff

    personal = args.with_personal_data
    account = ""
    if args.as_account:
        channel, user_id = parse_user_ref("--as", args.as_account)
        account = f"{channel}:{user_id}"
        if await staff.role_of(channel, user_id) != "admin":
            raise ConfigError(
                "--as", account, "an account with the admin role (iesaiste staff list)"
            )
    found = (
        await open_data.all_requests_with_personal_data()
        if personal
        else await open_data.every_request()
    )
    details = await open_data.personal_details() if personal else {}
    base = config.http_public_url
    records = []
    for request in found:
        record = georeport(request, config, base)
        record["neighbourhood"] = request.neighbourhood
        record["supporters"] = request.supporters
        if personal:
            extra = details.get(request.id)
            record["state"] = request.status
            record["hidden_reason"] = extra.hidden_reason if extra else ""
            record["author_resident_id"] = extra.author if extra else None
            record["author_language"] = extra.author_language if extra else ""
            record["comments"] = [
                {"at": at.isoformat(timespec="seconds"), "by": by, "text": text}
                for at, by, text in (extra.comments if extra else ())
            ]
        records.append(record)
    if args.format == "geojson":
        collection = feature_collection(found, config, base)
        for feature, record in zip(collection["features"], records, strict=True):
            feature["properties"] = record
        text = json.dumps(collection, ensure_ascii=False, indent=1)
    elif args.format == "json":
        text = json.dumps(records, ensure_ascii=False, indent=1)
    else:
        text = _csv(records)
    if args.output:
        try:
            await asyncio.to_thread(Path(args.output).write_text, text, encoding="utf-8")
        except OSError as error:
            raise ConfigError(
                "--output", args.output, f"a file that can be written ({error.strerror})"
            ) from None
        print(f"{len(records)} proposal(s) written to {args.output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    # Recorded once written: who took what, and whether it held personal data.
    await staff.record(
        "cli",
        "proposal.export",
        {"format": args.format, "count": len(records), "personal": personal, "as": account},
    )
    return 0


def _csv(records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if not records:
        return ""
    writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(
            {
                k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v
                for k, v in record.items()
            }
        )
    return out.getvalue()
