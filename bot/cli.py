"""The ``iesaiste`` command: run the bot, migrate, manage staff.

Operator mistakes end with one line naming the setting and exit code 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import logs
from bot.config import ROLES, Config, ConfigError, load, parse_role, parse_user_ref

log = logging.getLogger("iesaiste")

ANNOUNCEMENT_LENGTH = 4096  # Telegram's limit for one message


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iesaiste", description="Iesaiste: the residents' chatbot of a municipality."
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="TOML configuration (default: $IESAISTE_CONFIG, else the demo)",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the bot (the default)")
    commands.add_parser("migrate", help="bring the database schema up to date")
    staff = commands.add_parser("staff", help="manage staff accounts").add_subparsers(
        dest="staff_command", required=True
    )
    add = staff.add_parser("add", help="give an account a role")
    add.add_argument("user", help="CHANNEL:USER_ID, e.g. telegram:123456")
    add.add_argument("--role", required=True, choices=ROLES)
    remove = staff.add_parser("remove", help="take an account's role away")
    remove.add_argument("user", help="CHANNEL:USER_ID")
    staff.add_parser("list", help="list staff accounts")
    announce = commands.add_parser(
        "announce", help="queue an announcement for the running bot to deliver"
    )
    announce.add_argument("--text", required=True, help="the text in Latvian (the fallback)")
    announce.add_argument("--text-en", default="", help="the text in English")
    announce.add_argument("--text-ru", default="", help="the text in Russian")
    announce.add_argument(
        "--audience",
        default="all",
        help="all, neighbourhood:ID[,ID…] or topic:ID[,ID…] (default: all)",
    )
    announce.add_argument(
        "--at", default="", help="local time to send, e.g. 2026-12-01T10:00 (default: now)"
    )
    announce.add_argument(
        "--urgent", action="store_true", help="send during quiet hours too (21:00–09:00)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as error:
        print(f"iesaiste: configuration error: {error}", file=sys.stderr)
        return 2
    logs.configure(config.log_level, [config.telegram.token, config.telegram.webhook_secret])
    command = args.command or "run"
    try:
        if command == "run":
            from bot.app import serve

            asyncio.run(serve(config))
        elif command == "migrate":
            asyncio.run(_migrate(config))
        elif command == "announce":
            request = announcement_request(config, args)
            return asyncio.run(_with_database(config, lambda: _announce(request)))
        else:
            return asyncio.run(_with_database(config, lambda: _staff(args)))
    except ConfigError as error:
        print(f"iesaiste: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        from bot.app import StartupError

        if isinstance(error, StartupError):
            print(f"iesaiste: cannot start: {error}", file=sys.stderr)
            return 2
        if _is_database_unreachable(error):
            print(
                f"iesaiste: database.url = {_safe_url(config.database_url)}: "
                f"cannot connect ({error})",
                file=sys.stderr,
            )
            return 2
        raise
    except KeyboardInterrupt:
        return 130
    return 0


def _is_database_unreachable(error: Exception) -> bool:
    from storage.db import is_connection_error

    return is_connection_error(error)


def _safe_url(url: str) -> str:
    """The database URL without its password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":…@")
    return url


async def _migrate(config: Config) -> None:
    from storage import db

    await db.migrate(config.database_url)
    print("iesaiste: the database schema is up to date")


async def _with_database(config: Config, action: Callable[[], Awaitable[int]]) -> int:
    from storage import db

    await db.open_database(config.database_url, migrate_first=db.is_sqlite(config.database_url))
    try:
        return await action()
    finally:
        await db.close_database()


async def _staff(args: argparse.Namespace) -> int:
    from storage import staff

    if args.staff_command == "list":
        rows = await staff.list_staff()
        if not rows:
            print("no staff accounts")
        for row in rows:
            print(f"{row.channel}:{row.external_id}\t{row.role}\tsince {row.granted_at:%Y-%m-%d}")
        return 0
    channel, user_id = parse_user_ref("user", args.user)
    if args.staff_command == "add":
        role = parse_role("--role", args.role)
        changed = await staff.grant(channel, user_id, role, actor="cli")
        print(f"{channel}:{user_id} is {role}" + ("" if changed else " (unchanged)"))
        return 0
    if await staff.revoke(channel, user_id, actor="cli"):
        print(f"{channel}:{user_id} is no longer staff")
        return 0
    print(f"iesaiste: {channel}:{user_id} is not a staff account", file=sys.stderr)
    return 1


@dataclass(frozen=True, slots=True)
class AnnouncementRequest:
    texts: dict[str, str]
    audience: dict[str, Any]
    send_at: datetime
    urgent: bool


def announcement_request(config: Config, args: argparse.Namespace) -> AnnouncementRequest:
    """Check an ``announce`` command line against the configuration; ConfigError names the flag."""
    texts = {"lv": args.text.strip(), "en": args.text_en.strip(), "ru": args.text_ru.strip()}
    for language, text in texts.items():
        flag = "--text" if language == "lv" else f"--text-{language}"
        if language == "lv" and not text:
            raise ConfigError(flag, args.text, "the announcement's text in Latvian")
        if len(text) > ANNOUNCEMENT_LENGTH:
            raise ConfigError(flag, text[:20] + "…", f"at most {ANNOUNCEMENT_LENGTH} characters")
    kind, _, listed = args.audience.partition(":")
    keys = sorted({key.strip() for key in listed.split(",") if key.strip()})
    known = {
        "neighbourhood": {n.id for n in config.municipality.neighbourhoods},
        "topic": {t.id for t in config.municipality.topics},
    }
    if kind == "all" and not listed:
        audience: dict[str, Any] = {"kind": "all"}
    elif kind in known and keys and set(keys) <= known[kind]:
        audience = {"kind": kind, "keys": keys}
    else:
        choices = "; ".join(
            f"{k}: {', '.join(sorted(ids)) or '(none configured)'}" for k, ids in known.items()
        )
        raise ConfigError(
            "--audience",
            args.audience,
            f"all, neighbourhood:ID[,ID…] or topic:ID[,ID…] ({choices})",
        )
    send_at = datetime.now(UTC)
    if args.at:
        try:
            moment = datetime.fromisoformat(args.at)
        except ValueError:
            raise ConfigError("--at", args.at, "a local time such as 2026-12-01T10:00") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=config.municipality.zone)
        if moment < send_at - timedelta(minutes=1):
            raise ConfigError("--at", args.at, "a time that has not passed yet")
        send_at = moment.astimezone(UTC)
    return AnnouncementRequest(
        {k: v for k, v in texts.items() if v}, audience, send_at, args.urgent
    )


async def _announce(request: AnnouncementRequest) -> int:
    from storage import deliveries, staff

    announcement = await deliveries.create_announcement(
        author="cli",
        texts=request.texts,
        audience=request.audience,
        send_at=request.send_at,
        urgent=request.urgent,
    )
    await staff.record("cli", "announcement.queue", {"announcement": announcement.id})
    count = len(await deliveries.recipients(request.audience))
    print(f"announcement {announcement.id} queued for {count} recipients")
    return 0
