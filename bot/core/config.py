"""Configuration: a TOML file, then environment variables, then validation.

Every bad value raises ``ConfigError`` naming the key, the value and what is
expected, so an operator sees one clear line instead of a traceback.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.config_values import (
    LANGUAGES,
    ConfigError,
    IPNetwork,
    Named,
    as_bool,
    as_clock,
    as_int,
    as_networks,
    as_public_url,
    as_rate,
    as_seconds,
    as_str,
    check_unknown,
    named_list,
    parse_user_ref,
    subtable,
)
from bot.core.proposals_config import ProposalsConfig, default_proposals
from bot.core.proposals_config import parse as parse_proposals
from bot.core.quiet_hours import DEFAULT_END, DEFAULT_START

ROLES = ("admin", "moderator", "communications")
DEFAULT_DATABASE_URL = "sqlite://data/iesaiste.sqlite3"


@dataclass(frozen=True, slots=True)
class StaffGrant:
    channel: str
    user_id: str
    role: str


@dataclass(frozen=True, slots=True)
class Municipality:
    name: str = "Demo novads"
    timezone: str = "Europe/Riga"
    default_language: str = "lv"
    neighbourhoods: tuple[Named, ...] = ()
    topics: tuple[Named, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class HttpTimeouts:
    """How long a client may take over its request; config.example.toml says why these."""

    header_seconds: float = 10.0  # a request head, from its first byte
    body_seconds: float = 30.0  # a request body, from the end of its head
    keepalive_seconds: float = 75.0  # an idle connection, waiting for its next request


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    token: str = ""
    api_url: str = "https://api.telegram.org"
    mode: str = "polling"  # or "webhook"
    webhook_url: str = ""
    webhook_secret: str = ""


@dataclass(frozen=True, slots=True)
class MessengerConfig:
    """A Facebook page through the Messenger Platform; on when a page token is set."""

    page_token: str = ""
    app_secret: str = ""  # signs the webhook's deliveries (X-Hub-Signature-256)
    verify_token: str = ""  # what Meta's GET verification must present
    api_url: str = "https://graph.facebook.com"
    api_version: str = "v25.0"
    # The page holds the Human Agent permission (App Review): a staff member's own
    # answer may then reach a resident up to 7 days after their last message.
    human_agent: bool = False
    # The Send API takes about 300 calls a second per page; we stay well below.
    per_second: float = 50.0
    per_chat_per_second: float = 1.0

    @property
    def enabled(self) -> bool:
        return bool(self.page_token)


@dataclass(frozen=True, slots=True)
class WebchatConfig:
    enabled: bool = True
    # Empty: a secret is generated once and kept in the database, so every
    # worker sharing that database signs cookies alike.
    cookie_secret: str = ""
    # The cookie is Secure when http.public_url is https, or when this says so.
    secure_cookie: bool = False
    # A fresh cookie costs nothing, so new residents are limited per client address
    # (0: no limit).
    new_residents_per_address_per_hour: int = 20
    # Residents who never finish onboarding are forgotten after this many days of silence.
    forget_unfinished_after_days: int = 30


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_text_length: int = 2000
    throttle_messages: int = 20
    throttle_seconds: int = 60


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """How fast pushes go out, and when they may not."""

    # Telegram allows about 30 messages a second overall (up to 1000 with paid
    # broadcasts) and about 1 a second in one chat.
    telegram_per_second: float = 30.0
    telegram_per_chat_per_second: float = 1.0
    quiet_start: time = DEFAULT_START
    quiet_end: time = DEFAULT_END
    # How long a push claimed by a worker stays its own: after that, a worker
    # that has not reported back is taken for dead and its rows are queued again.
    lease_seconds: int = 300
    # How long, in all, an answer to a resident may wait for Telegram (a 429's
    # retry_after, pauses after a network fault) before what is left of it is
    # handed on instead of waited for.
    answer_wait_seconds: int = 60


@dataclass(frozen=True, slots=True)
class Config:
    municipality: Municipality = field(default_factory=Municipality)
    staff: tuple[StaffGrant, ...] = ()
    database_url: str = DEFAULT_DATABASE_URL
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    http_timeouts: HttpTimeouts = field(default_factory=HttpTimeouts)
    # The public base URL of the bot, e.g. https://bot.example.lv ("" when not public).
    http_public_url: str = ""
    # Reverse proxies whose X-Forwarded-For is believed; nobody's by default.
    http_trusted_proxies: tuple[IPNetwork, ...] = ()
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    messenger: MessengerConfig = field(default_factory=MessengerConfig)
    webchat: WebchatConfig = field(default_factory=WebchatConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    log_level: str = "INFO"
    # "text" (one readable line a record) or "json" (one object a line, for a log store).
    log_format: str = "text"
    # /metrics (Prometheus) on a port of its own, never the public one: 0 is off.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    proposals: ProposalsConfig = field(default_factory=default_proposals)


def parse_role(key: str, role: object) -> str:
    if role not in ROLES:
        raise ConfigError(key, role, f"one of {', '.join(ROLES)}")
    return str(role)


def _staff(raw: object) -> tuple[StaffGrant, ...]:
    if not isinstance(raw, list):
        raise ConfigError("staff", raw, "a list of tables with user and role")
    grants = []
    for index, entry in enumerate(raw):
        where = f"staff[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(
                where, entry, 'a table like { user = "telegram:123", role = "admin" }'
            )
        channel, user_id = parse_user_ref(f"{where}.user", entry.get("user"))
        grants.append(StaffGrant(channel, user_id, parse_role(f"{where}.role", entry.get("role"))))
    return tuple(grants)


def from_mapping(data: Mapping[str, Any], base: Path | None = None) -> Config:
    """Build a Config from parsed TOML; missing keys take the defaults."""
    check_unknown(
        "",
        data,
        {
            "municipality",
            "staff",
            "database",
            "http",
            "telegram",
            "messenger",
            "webchat",
            "limits",
            "delivery",
            "log",
            "metrics",
            "proposals",
        },
    )
    defaults = Config()
    m = subtable(data, "municipality")
    check_unknown(
        "municipality", m, {"name", "timezone", "default_language", "neighbourhoods", "topics"}
    )
    municipality = Municipality(
        name=as_str("municipality.name", m.get("name", defaults.municipality.name)),
        timezone=as_str("municipality.timezone", m.get("timezone", defaults.municipality.timezone)),
        default_language=as_str("municipality.default_language", m.get("default_language", "lv")),
        neighbourhoods=named_list("municipality.neighbourhoods", m.get("neighbourhoods", [])),
        topics=named_list("municipality.topics", m.get("topics", [])),
    )
    db = subtable(data, "database")
    check_unknown("database", db, {"url"})
    http = subtable(data, "http")
    check_unknown(
        "http",
        http,
        {
            "host",
            "port",
            "header_timeout_seconds",
            "body_timeout_seconds",
            "keepalive_timeout_seconds",
            "public_url",
            "trusted_proxies",
        },
    )
    tg = subtable(data, "telegram")
    check_unknown("telegram", tg, {"token", "api_url", "mode", "webhook_url", "webhook_secret"})
    fb = subtable(data, "messenger")
    check_unknown(
        "messenger",
        fb,
        {
            "page_token",
            "app_secret",
            "verify_token",
            "api_url",
            "api_version",
            "human_agent",
            "per_second",
            "per_chat_per_second",
        },
    )
    wc = subtable(data, "webchat")
    check_unknown(
        "webchat",
        wc,
        {
            "enabled",
            "cookie_secret",
            "secure_cookie",
            "new_residents_per_address_per_hour",
            "forget_unfinished_after_days",
        },
    )
    lim = subtable(data, "limits")
    check_unknown("limits", lim, {"max_text_length", "throttle_messages", "throttle_seconds"})
    dl = subtable(data, "delivery")
    check_unknown(
        "delivery",
        dl,
        {
            "telegram_per_second",
            "telegram_per_chat_per_second",
            "quiet_start",
            "quiet_end",
            "lease_seconds",
            "answer_wait_seconds",
        },
    )
    log = subtable(data, "log")
    check_unknown("log", log, {"level", "format"})
    metrics = subtable(data, "metrics")
    check_unknown("metrics", metrics, {"host", "port"})
    return Config(
        municipality=municipality,
        staff=_staff(data.get("staff", [])),
        database_url=as_str("database.url", db.get("url", defaults.database_url)),
        http_host=as_str("http.host", http.get("host", defaults.http_host)),
        http_port=as_int("http.port", http.get("port", defaults.http_port), 1, 65535),
        http_timeouts=_http_timeouts(http),
        http_public_url=as_public_url("http.public_url", http.get("public_url", "")),
        http_trusted_proxies=as_networks("http.trusted_proxies", http.get("trusted_proxies", [])),
        telegram=TelegramConfig(
            token=as_str("telegram.token", tg.get("token", "")),
            api_url=as_str("telegram.api_url", tg.get("api_url", defaults.telegram.api_url)),
            mode=as_str("telegram.mode", tg.get("mode", "polling")),
            webhook_url=as_str("telegram.webhook_url", tg.get("webhook_url", "")),
            webhook_secret=as_str("telegram.webhook_secret", tg.get("webhook_secret", "")),
        ),
        messenger=_messenger(fb),
        webchat=WebchatConfig(
            enabled=as_bool("webchat.enabled", wc.get("enabled", True)),
            cookie_secret=as_str("webchat.cookie_secret", wc.get("cookie_secret", "")),
            secure_cookie=as_bool("webchat.secure_cookie", wc.get("secure_cookie", False)),
            new_residents_per_address_per_hour=as_int(
                "webchat.new_residents_per_address_per_hour",
                wc.get("new_residents_per_address_per_hour", 20),
                0,
                100_000,
            ),
            forget_unfinished_after_days=as_int(
                "webchat.forget_unfinished_after_days",
                wc.get("forget_unfinished_after_days", 30),
                1,
                3650,
            ),
        ),
        limits=LimitsConfig(
            max_text_length=as_int(
                "limits.max_text_length", lim.get("max_text_length", 2000), 10, 4000
            ),
            throttle_messages=as_int(
                "limits.throttle_messages", lim.get("throttle_messages", 20), 1, 10_000
            ),
            throttle_seconds=as_int(
                "limits.throttle_seconds", lim.get("throttle_seconds", 60), 1, 3600
            ),
        ),
        delivery=DeliveryConfig(
            telegram_per_second=as_rate(
                "delivery.telegram_per_second", dl.get("telegram_per_second", 30), 1000
            ),
            telegram_per_chat_per_second=as_rate(
                "delivery.telegram_per_chat_per_second",
                dl.get("telegram_per_chat_per_second", 1),
                30,
            ),
            quiet_start=as_clock("delivery.quiet_start", dl.get("quiet_start", "21:00")),
            quiet_end=as_clock("delivery.quiet_end", dl.get("quiet_end", "09:00")),
            # At least a minute: a worker holds a claimed batch for up to ten seconds.
            lease_seconds=as_int(
                "delivery.lease_seconds", dl.get("lease_seconds", 300), 60, 86_400
            ),
            answer_wait_seconds=as_int(
                "delivery.answer_wait_seconds", dl.get("answer_wait_seconds", 60), 1, 600
            ),
        ),
        log_level=as_str("log.level", log.get("level", "INFO")).upper(),
        log_format=as_str("log.format", log.get("format", defaults.log_format)).lower(),
        metrics_host=as_str("metrics.host", metrics.get("host", defaults.metrics_host)),
        metrics_port=as_int("metrics.port", metrics.get("port", defaults.metrics_port), 0, 65535),
        proposals=parse_proposals(data, municipality.neighbourhoods, base),
    )


def _messenger(fb: Mapping[str, Any]) -> MessengerConfig:
    defaults = MessengerConfig()
    return MessengerConfig(
        page_token=as_str("messenger.page_token", fb.get("page_token", "")),
        app_secret=as_str("messenger.app_secret", fb.get("app_secret", "")),
        verify_token=as_str("messenger.verify_token", fb.get("verify_token", "")),
        api_url=as_str("messenger.api_url", fb.get("api_url", defaults.api_url)),
        api_version=as_str("messenger.api_version", fb.get("api_version", defaults.api_version)),
        human_agent=as_bool("messenger.human_agent", fb.get("human_agent", False)),
        per_second=as_rate("messenger.per_second", fb.get("per_second", defaults.per_second), 300),
        per_chat_per_second=as_rate(
            "messenger.per_chat_per_second",
            fb.get("per_chat_per_second", defaults.per_chat_per_second),
            10,
        ),
    )


def _http_timeouts(http: Mapping[str, Any]) -> HttpTimeouts:
    """Half a second at least (the tests use short ones), an hour at most."""
    defaults = HttpTimeouts()

    def seconds(key: str, default: float) -> float:
        return as_seconds(f"http.{key}", http.get(key, default), 0.5, 3600)

    return HttpTimeouts(
        header_seconds=seconds("header_timeout_seconds", defaults.header_seconds),
        body_seconds=seconds("body_timeout_seconds", defaults.body_seconds),
        keepalive_seconds=seconds("keepalive_timeout_seconds", defaults.keepalive_seconds),
    )


# Environment variable → (config key for messages, how to apply it)
ENVIRONMENT = {
    "IESAISTE_TELEGRAM_TOKEN": "telegram.token",
    "IESAISTE_TELEGRAM_API_URL": "telegram.api_url",
    "IESAISTE_TELEGRAM_MODE": "telegram.mode",
    "IESAISTE_TELEGRAM_WEBHOOK_URL": "telegram.webhook_url",
    "IESAISTE_TELEGRAM_WEBHOOK_SECRET": "telegram.webhook_secret",
    "IESAISTE_MESSENGER_PAGE_TOKEN": "messenger.page_token",
    "IESAISTE_MESSENGER_APP_SECRET": "messenger.app_secret",
    "IESAISTE_MESSENGER_VERIFY_TOKEN": "messenger.verify_token",
    "IESAISTE_MESSENGER_API_URL": "messenger.api_url",
    "IESAISTE_DATABASE_URL": "database.url",
    "IESAISTE_HTTP_HOST": "http.host",
    "IESAISTE_HTTP_PORT": "http.port",
    "IESAISTE_WEBCHAT_COOKIE_SECRET": "webchat.cookie_secret",
    "IESAISTE_LOG_LEVEL": "log.level",
    "IESAISTE_LOG_FORMAT": "log.format",
    "IESAISTE_METRICS_PORT": "metrics.port",
}


def apply_environment(config: Config, environ: Mapping[str, str]) -> Config:
    """Environment variables override the file: a deployment sets secrets there."""
    tg = config.telegram
    values = {key: environ[name] for name, key in ENVIRONMENT.items() if name in environ}
    if "telegram.token" in values:
        tg = replace(tg, token=values["telegram.token"].strip())
    if "telegram.api_url" in values:
        tg = replace(tg, api_url=values["telegram.api_url"].strip())
    if "telegram.mode" in values:
        tg = replace(tg, mode=values["telegram.mode"].strip())
    if "telegram.webhook_url" in values:
        tg = replace(tg, webhook_url=values["telegram.webhook_url"].strip())
    if "telegram.webhook_secret" in values:
        tg = replace(tg, webhook_secret=values["telegram.webhook_secret"])
    config = replace(config, telegram=tg)
    fb = config.messenger
    fb = replace(
        fb,
        page_token=values.get("messenger.page_token", fb.page_token).strip(),
        app_secret=values.get("messenger.app_secret", fb.app_secret).strip(),
        verify_token=values.get("messenger.verify_token", fb.verify_token).strip(),
        api_url=values.get("messenger.api_url", fb.api_url).strip(),
    )
    config = replace(config, messenger=fb)
    if "database.url" in values:
        config = replace(config, database_url=values["database.url"].strip())
    if "http.host" in values:
        config = replace(config, http_host=values["http.host"].strip())
    if "http.port" in values:
        config = replace(
            config, http_port=as_int("IESAISTE_HTTP_PORT", values["http.port"], 1, 65535)
        )
    if "webchat.cookie_secret" in values:
        config = replace(
            config, webchat=replace(config.webchat, cookie_secret=values["webchat.cookie_secret"])
        )
    if "log.level" in values:
        config = replace(config, log_level=values["log.level"].strip().upper())
    if "log.format" in values:
        config = replace(config, log_format=values["log.format"].strip().lower())
    if "metrics.port" in values:
        port = as_int("IESAISTE_METRICS_PORT", values["metrics.port"], 0, 65535)
        config = replace(config, metrics_port=port)
    return config


def validate(config: Config) -> Config:
    """Check what needs more than a type: zones, URLs, modes, languages."""
    m = config.municipality
    try:
        ZoneInfo(m.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "municipality.timezone", m.timezone, "an IANA time zone such as Europe/Riga"
        ) from None
    if m.default_language not in LANGUAGES:
        raise ConfigError(
            "municipality.default_language", m.default_language, f"one of {', '.join(LANGUAGES)}"
        )
    _check_database_url(config.database_url)
    api = urlsplit(config.telegram.api_url)
    if api.scheme not in ("http", "https") or not api.netloc:
        raise ConfigError(
            "telegram.api_url",
            masked_url(config.telegram.api_url),
            "an http(s) URL such as https://api.telegram.org",
        )
    token = config.telegram.token
    if token and not re.fullmatch(r"\d+:[A-Za-z0-9_-]{20,}", token):
        # Show at most the bot id, the digits before ':'; the rest of a token is a secret.
        bot_id, colon, _ = token.partition(":")
        shown = f"{bot_id}:…" if colon and bot_id.isdigit() and bot_id.isascii() else "…"
        raise ConfigError("telegram.token", shown, "a token from @BotFather, 123456:ABC…")
    if config.telegram.mode not in ("polling", "webhook"):
        raise ConfigError("telegram.mode", config.telegram.mode, "polling or webhook")
    if token and config.telegram.mode == "webhook":
        hook = urlsplit(config.telegram.webhook_url)
        if hook.scheme != "https" and hook.hostname not in ("127.0.0.1", "localhost"):
            raise ConfigError(
                "telegram.webhook_url",
                masked_url(config.telegram.webhook_url).replace(token, "…"),
                "the public https URL of /webhooks/telegram, e.g. https://bot.example.lv/webhooks/telegram",
            )
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", config.telegram.webhook_secret):
            raise ConfigError(
                "telegram.webhook_secret", "…", "16–256 characters of A-Z, a-z, 0-9, '_' or '-'"
            )
    _check_messenger(config.messenger)
    if config.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log.level", config.log_level, "DEBUG, INFO, WARNING or ERROR")
    if config.log_format not in ("text", "json"):
        raise ConfigError("log.format", config.log_format, "text or json")
    if config.metrics_port and config.metrics_port == config.http_port:
        raise ConfigError(
            "metrics.port",
            config.metrics_port,
            "a port other than http.port: the metrics must not be on the public port",
        )
    return config


def _check_messenger(fb: MessengerConfig) -> None:
    """A page token needs the two other secrets: without the app secret no delivery
    could be trusted, without the verify token Meta could not subscribe the webhook."""
    api = urlsplit(fb.api_url)
    if api.scheme not in ("http", "https") or not api.netloc:
        raise ConfigError(
            "messenger.api_url",
            masked_url(fb.api_url),
            "an http(s) URL such as https://graph.facebook.com",
        )
    if not re.fullmatch(r"v[0-9]{1,3}\.[0-9]", fb.api_version):
        raise ConfigError(
            "messenger.api_version", fb.api_version, "a Graph API version such as v25.0"
        )
    if not fb.enabled:
        return
    if not re.fullmatch(r"[A-Za-z0-9]{20,1024}", fb.page_token):
        raise ConfigError(
            "messenger.page_token", "…", "the page access token from Meta (letters and digits)"
        )
    if not re.fullmatch(r"[0-9a-f]{32}", fb.app_secret):
        raise ConfigError(
            "messenger.app_secret",
            "…" if fb.app_secret else "",
            "the app secret: 32 hex digits (App settings → Basic)",
        )
    if not re.fullmatch(r"[\x21-\x7e]{8,256}", fb.verify_token):
        raise ConfigError(
            "messenger.verify_token",
            "…" if fb.verify_token else "",
            "8–256 printable characters of your choice, the same as in the app's webhook settings",
        )


DATABASE_URL_FORMS = "sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE"


def _check_database_url(url: str) -> None:
    """What Tortoise would refuse with a traceback, named here in one line."""
    parts = urlsplit(url)
    if parts.scheme not in ("sqlite", "postgres", "postgresql", "asyncpg"):
        raise ConfigError("database.url", masked_url(url), DATABASE_URL_FORMS)
    if parts.scheme == "sqlite":
        if not url.removeprefix("sqlite://").split("?", 1)[0]:
            raise ConfigError(
                "database.url",
                url,
                "sqlite://PATH with a path, e.g. sqlite://data/iesaiste.sqlite3",
            )
        return
    if "@" in parts.path + parts.query + parts.fragment:
        # urlsplit ended the user part early: the password would show in errors.
        raise ConfigError(
            "database.url",
            masked_url(url),
            "a password with '/', '?', '#' or '@' %-encoded (%2F, %3F, %23, %40)",
        )
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ConfigError(
            "database.url", masked_url(url), "a port from 1 to 65535 after the host, e.g. :5432"
        ) from None


def masked_url(url: str) -> str:
    """The URL with its password, if any, replaced by '…': for error lines and logs.

    Read by hand rather than by urlsplit, which stops the user part at a '/'
    or '?' that a careless password may contain.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = userinfo.partition(":")[0] + ":…@" + host
    return scheme + sep + re.sub(r"(?i)(password=)[^&#]*", r"\1…", rest)


def _read(file: Path) -> dict[str, Any]:
    """Parse the configuration file; every way it can be unreadable is one ConfigError."""
    where = str(file)
    if file.is_dir():
        raise ConfigError("--config", where, "a TOML file, not a directory")
    if file.exists() and not file.is_file():
        # A FIFO or a device would block or never end.
        raise ConfigError("--config", where, "a regular TOML file")
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError("--config", where, "an existing TOML file") from None
    except OSError as error:
        raise ConfigError("--config", where, f"a readable file ({error.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ConfigError(
            "--config",
            where,
            f"a file saved as UTF-8 (byte 0x{raw[error.start]:02x} on line {line} is not UTF-8)",
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("--config", where, f"valid TOML ({error})") from None
    except RecursionError:
        raise ConfigError("--config", where, "TOML nested less deeply") from None


def load(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read the file (``--config`` or ``IESAISTE_CONFIG``), apply the environment, validate."""
    environ = os.environ if environ is None else environ
    path = path or environ.get("IESAISTE_CONFIG") or None
    data: dict[str, Any] = {}
    base = None
    if path is not None:
        data = _read(Path(path))
        base = Path(path).parent
    config = from_mapping(data, base)
    if not config.municipality.neighbourhoods and not config.municipality.topics and not data:
        config = replace(config, municipality=demo_municipality())
    return validate(apply_environment(config, environ))


def demo_municipality() -> Municipality:
    """What runs with no configuration file, so anyone can try the bot at once."""

    def named(ident: str, lv: str, en: str, ru: str, short: dict[str, str] | None = None) -> Named:
        return Named(ident, {"lv": lv, "en": en, "ru": ru}, short or {})

    return Municipality(
        name="Demo novads",
        neighbourhoods=(
            named("centrs", "Centrs", "Centre", "Центр"),
            named("jaunciems", "Jaunciems", "Jaunciems", "Яунциемс"),
            named("parupe", "Pārupe", "Across the river", "Заречье"),
            named("lauki", "Lauku pagasts", "Rural parish", "Сельская волость"),
        ),
        topics=(
            named(
                "transport",
                "Ceļi un transports",
                "Roads and transport",
                "Дороги и транспорт",
                {"en": "Roads, transport"},
            ),
            named(
                "environment",
                "Vide un zaļās zonas",
                "Environment and parks",
                "Среда и парки",
                {"lv": "Vide, zaļās zonas", "en": "Environment"},
            ),
            named("education", "Izglītība", "Education", "Образование"),
            named("culture", "Kultūra un sports", "Culture and sport", "Культура и спорт"),
            named("social", "Sociālā palīdzība", "Social care", "Социальная помощь"),
        ),
    )
