"""The ``iesaiste`` command: run the bot, migrate, manage staff, back up.

Operator mistakes end with one line naming the setting and exit code 2,
never a traceback. Anything else that goes wrong ends with one line too and
exit code 1; its traceback is logged at DEBUG (IESAISTE_LOG_LEVEL=DEBUG).
No line carries a password or a token.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import unquote

from bot import backup_cli, messenger_cli, polls_cli, proposals_cli
from bot.cli_values import coming_time, parse_audience
from bot.core import logs
from bot.core.config import (
    ROLES,
    Config,
    ConfigError,
    load,
    masked_url,
    parse_role,
    parse_user_ref,
)

log = logging.getLogger("iesaiste")

ANNOUNCEMENT_LENGTH = 4096  # Telegram's limit for one message


class _Parser(argparse.ArgumentParser):
    """A command-line mistake is one line and a hint, not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; try '{self.prog} --help'\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="iesaiste", description="Iesaiste: the residents' chatbot of a municipality."
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="TOML configuration (default: $IESAISTE_CONFIG, else the demo)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="run the bot (the default)")
    commands.add_parser("migrate", help="bring the database schema up to date")
    staff = commands.add_parser("staff", help="manage staff accounts").add_subparsers(
        dest="staff_command", required=True, metavar="{add,remove,list}"
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
    proposals_cli.add_parser(commands)
    polls_cli.add_parser(commands)
    messenger_cli.add_parser(commands)
    backup_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config: Config | None = None
    try:
        config = load(args.config)
        logs.configure(config.log_level, _secrets(config), config.log_format)
        return asyncio.run(_command(config, args))
    except KeyboardInterrupt:
        return 130
    except ConfigError as error:
        prefix = "" if config else "configuration error: "
        return _fail(f"{prefix}{error}", config)
    except Exception as error:
        from bot.app import StartupError
        from storage.db import DatabaseUnavailable
        from storage.errors import unavailable

        url = masked_url(config.database_url) if config else "?"
        if isinstance(error, StartupError):
            return _fail(f"cannot start: {error}", config)
        if isinstance(error, DatabaseUnavailable):
            return _fail(f"database.url = {url}: {error}", config)
        if unavailable(error):
            return _fail(f"database.url = {url}: cannot connect ({error})", config)
        # A defect, not an operator's mistake: one line here, the traceback at DEBUG.
        log.debug("unexpected error", exc_info=True)
        return _fail(
            f"unexpected error: {type(error).__name__}: {error} "
            "(IESAISTE_LOG_LEVEL=DEBUG shows where)",
            config,
            code=1,
        )


async def _command(config: Config, args: argparse.Namespace) -> int:
    from storage import db

    command = args.command or "run"
    if command == "messenger":  # the Graph API only: no database
        return await messenger_cli.run(config, args)
    if command == "backup":  # before db.check, which would create a missing file
        try:
            return await asyncio.to_thread(backup_cli.run, config, args)
        except backup_cli.BackupRefused as error:
            return _fail(f"backup: {error}", config)
    if command == "announce":
        request = announcement_request(config, args)  # the command line first, then the database
    if command == "proposals":
        proposals_cli.check(config, args)
    if command == "poll":
        poll_request = polls_cli.prepare(config, args)
    # Before Tortoise sees the database: a failed connection there can hang. `staff`,
    # `announce`, `proposals` and `poll` migrate SQLite themselves; PostgreSQL must have been
    # migrated.
    needs_schema = command in ("staff", "announce", "proposals", "poll") and not db.is_sqlite(
        config.database_url
    )
    await db.check(config.database_url, migrated=needs_schema)
    if command == "run":
        from bot.app import serve

        await serve(config)
        return 0
    if command == "migrate":
        await _migrate(config)
        return 0
    if command == "announce":
        return await _with_database(config, lambda: _announce(request))
    if command == "proposals":
        return await _with_database(config, lambda: proposals_cli.run(config, args))
    if command == "poll":
        return await _with_database(config, lambda: polls_cli.run(config, args, poll_request))
    return await _with_database(config, lambda: _staff(args))


def _secrets(config: Config | None) -> list[str]:
    """What must never appear in an error line or a log line."""
    if config is None:  # the file did not load: what the environment holds
        names = (
            "IESAISTE_TELEGRAM_TOKEN",
            "IESAISTE_TELEGRAM_WEBHOOK_SECRET",
            "IESAISTE_MESSENGER_PAGE_TOKEN",
            "IESAISTE_MESSENGER_APP_SECRET",
            "IESAISTE_MESSENGER_VERIFY_TOKEN",
        )
        found = [os.environ.get(name, "") for name in names]
        found.append(_password(os.environ.get("IESAISTE_DATABASE_URL", "")))
    else:
        found = [
            config.telegram.token,
            config.telegram.webhook_secret,
            config.webchat.cookie_secret,
            config.messenger.page_token,
            config.messenger.app_secret,
            config.messenger.verify_token,
            _password(config.database_url),
        ]
    # A URL's password may be written %-encoded; Tortoise and asyncpg use it decoded.
    # Four characters at least: replacing a shorter one would garble every line.
    return [secret for secret in {*found, *map(unquote, found)} if len(secret) >= 4]


def _password(url: str) -> str:
    """The password in a URL's user part, read as bot.core.config.masked_url reads it."""
    userinfo = (url.partition("://")[2] or url).rpartition("@")[0]
    return userinfo.partition(":")[2]


def _fail(message: str, config: Config | None, code: int = 2) -> int:
    """Print one line on stderr, whatever the message held: no newline, no secret."""
    line = " ".join(message.splitlines())
    for secret in sorted(_secrets(config), key=len, reverse=True):
        line = line.replace(secret, "…")
    print(f"iesaiste: {line}", file=sys.stderr)
    return code


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
            account = _account(row.channel, row.external_id)
            print(f"{account}\t{row.role}\tsince {row.granted_at:%Y-%m-%d}")
        return 0
    # Removal takes any id, so that one recorded before ids were checked can go too.
    channel, user_id = parse_user_ref("user", args.user, any_id=args.staff_command == "remove")
    if args.staff_command == "add":
        role = parse_role("--role", args.role)
        changed = await staff.grant(channel, user_id, role, actor="cli")
        print(f"{channel}:{user_id} is {role}" + ("" if changed else " (unchanged)"))
        return 0
    if await staff.revoke(channel, user_id, actor="cli"):
        print(f"{_account(channel, user_id)} is no longer staff")
        return 0
    print(f"iesaiste: {_account(channel, user_id)} is not a staff account", file=sys.stderr)
    return 1


def _account(channel: str, user_id: str) -> str:
    """CHANNEL:ID on one line, even for an id recorded before ids were checked."""
    return f"{channel}:{user_id if user_id.isprintable() else repr(user_id)}"


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
    audience = parse_audience(config, "--audience", args.audience)
    send_at = datetime.now(UTC)
    if args.at:
        from dialogs.announce import FAR_AHEAD  # the limit staff have in the chat

        send_at = coming_time("--at", args.at, config.municipality.zone, send_at, FAR_AHEAD)
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
