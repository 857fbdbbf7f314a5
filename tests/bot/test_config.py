"""Configuration: defaults run the demo, the environment overrides, bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.config import (
    DEFAULT_DATABASE_URL,
    ConfigError,
    Named,
    StaffGrant,
    load,
    masked_url,
    parse_user_ref,
)

TOKEN = "123456:ABCdefGhIJKlmnOPQRstuVWXyz0123456789"

FB_TOKEN = "EAAGstandin0000pagetoken0000000000000000"
FB_SECRET = "0123456789abcdef0123456789abcdef"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_with_no_file_the_demo_municipality_runs_on_sqlite_without_telegram() -> None:
    config = load(None, {})
    assert config.municipality.name == "Demo novads"
    assert config.municipality.timezone == "Europe/Riga"
    assert [n.id for n in config.municipality.neighbourhoods] == [
        "centrs",
        "jaunciems",
        "parupe",
        "lauki",
    ]
    assert [t.id for t in config.municipality.topics] == [
        "transport",
        "environment",
        "education",
        "culture",
        "social",
    ]
    assert config.database_url == DEFAULT_DATABASE_URL
    assert (config.http_host, config.http_port) == ("127.0.0.1", 8080)
    assert config.telegram.token == ""


def test_the_example_file_is_valid_and_documents_every_section() -> None:
    config = load("config.example.toml", {})
    assert config.municipality.neighbourhoods[0].name("ru") == "Центр"
    text = Path("config.example.toml").read_text(encoding="utf-8")
    for section in (
        "[municipality]",
        "[database]",
        "[http]",
        "[telegram]",
        "[webchat]",
        "[limits]",
        "[delivery]",
        "[log]",
    ):
        assert section in text


def test_environment_variables_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[http]\nport = 9000\n[telegram]\ntoken = ""\n')
    config = load(
        path,
        {
            "IESAISTE_TELEGRAM_TOKEN": TOKEN,
            "IESAISTE_TELEGRAM_API_URL": "http://127.0.0.1:8081",
            "IESAISTE_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/iesaiste",
            "IESAISTE_HTTP_HOST": "0.0.0.0",
            "IESAISTE_HTTP_PORT": "8181",
        },
    )
    assert config.telegram.token == TOKEN
    assert config.telegram.api_url == "http://127.0.0.1:8081"
    assert config.database_url == "postgres://postgres@127.0.0.1:5432/iesaiste"
    assert (config.http_host, config.http_port) == ("0.0.0.0", 8181)


def test_the_config_file_may_come_from_iesaiste_config(tmp_path: Path) -> None:
    path = write(tmp_path, '[municipality]\nname = "Ķekavas novads"\n')
    assert load(None, {"IESAISTE_CONFIG": path}).municipality.name == "Ķekavas novads"


def test_staff_and_catalog_are_read_with_names_per_language(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[municipality.neighbourhoods]]
id = "centrs"
name = { lv = "Centrs", en = "Centre" }
[[municipality.topics]]
id = "roads"
name = "Ceļi"
[[staff]]
user = "telegram:42"
role = "moderator"
""",
    )
    config = load(path, {})
    assert config.municipality.neighbourhoods == (
        Named("centrs", {"lv": "Centrs", "en": "Centre"}),
    )
    assert config.municipality.topics == (Named("roads", {"lv": "Ceļi"}),)
    assert config.municipality.neighbourhoods[0].name("ru") == "Centrs"  # falls back to Latvian
    assert config.municipality.topics[0].name("en") == "Ceļi"
    assert config.staff == (StaffGrant("telegram", "42", "moderator"),)


@pytest.mark.parametrize(
    ("toml", "environ", "key", "value", "expected"),
    [
        (
            '[municipality]\ntimezone = "Europe/Rigaa"\n',
            {},
            "municipality.timezone",
            "Europe/Rigaa",
            "an IANA time zone such as Europe/Riga",
        ),
        (
            '[municipality]\ndefault_language = "de"\n',
            {},
            "municipality.default_language",
            "de",
            "one of lv, en, ru",
        ),
        ("[http]\nport = 70000\n", {}, "http.port", 70000, "a whole number from 1 to 65535"),
        (
            "",
            {"IESAISTE_HTTP_PORT": "eighty"},
            "IESAISTE_HTTP_PORT",
            "eighty",
            "a whole number from 1 to 65535",
        ),
        (
            '[database]\nurl = "mysql://x"\n',
            {},
            "database.url",
            "mysql://x",
            "sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
        ),
        (
            "",
            {"IESAISTE_TELEGRAM_API_URL": "api.telegram.org"},
            "telegram.api_url",
            "api.telegram.org",
            "an http(s) URL such as https://api.telegram.org",
        ),
        (
            "",
            {"IESAISTE_TELEGRAM_TOKEN": "not-a-token"},
            "telegram.token",
            "…",
            "a token from @BotFather, 123456:ABC…",
        ),
        ('[telegram]\nmode = "push"\n', {}, "telegram.mode", "push", "polling or webhook"),
        (
            '[telegram]\nmode = "webhook"\n',
            {"IESAISTE_TELEGRAM_TOKEN": TOKEN},
            "telegram.webhook_url",
            "",
            "the public https URL of /webhooks/telegram, "
            "e.g. https://bot.example.lv/webhooks/telegram",
        ),
        (
            '[[staff]]\nuser = "123"\nrole = "admin"\n',
            {},
            "staff[0].user",
            "123",
            "CHANNEL:USER_ID with CHANNEL one of telegram, webchat, messenger",
        ),
        (
            '[[staff]]\nuser = "telegram:1"\nrole = "boss"\n',
            {},
            "staff[0].role",
            "boss",
            "one of admin, moderator, communications",
        ),
        (
            '[[municipality.topics]]\nid = "Roads!"\nname = "x"\n',
            {},
            "municipality.topics[0].id",
            "Roads!",
            "1–24 lower-case letters, digits, '-' or '_', e.g. 'centrs'",
        ),
        (
            '[[municipality.topics]]\nid = "a"\nname = { en = "A" }\n',
            {},
            "municipality.topics[0].name",
            {"en": "A"},
            "a Latvian name (lv), the fallback for every language",
        ),
        (
            "[htttp]\nport = 1\n",
            {},
            "htttp",
            "…",
            "a known key (database, delivery, http, limits, log, messenger, metrics, "
            "municipality, proposals, staff, telegram, webchat)",
        ),
        (
            "[delivery]\ntelegram_per_second = 0\n",
            {},
            "delivery.telegram_per_second",
            0,
            "a number of messages a second above 0, at most 1000",
        ),
        (
            "[delivery]\ntelegram_per_second = 5000\n",
            {},
            "delivery.telegram_per_second",
            5000,
            "a number of messages a second above 0, at most 1000",
        ),
        (
            '[delivery]\nquiet_start = "9pm"\n',
            {},
            "delivery.quiet_start",
            "9pm",
            "a time of day as HH:MM, e.g. 21:00",
        ),
        (
            "",
            {"IESAISTE_MESSENGER_PAGE_TOKEN": "EAAG-not a token!"},
            "messenger.page_token",
            "…",
            "the page access token from Meta (letters and digits)",
        ),
        (
            "",
            {"IESAISTE_MESSENGER_PAGE_TOKEN": FB_TOKEN},
            "messenger.app_secret",
            "",
            "the app secret: 32 hex digits (App settings → Basic)",
        ),
        (
            "",
            {"IESAISTE_MESSENGER_PAGE_TOKEN": FB_TOKEN, "IESAISTE_MESSENGER_APP_SECRET": "secret"},
            "messenger.app_secret",
            "…",
            "the app secret: 32 hex digits (App settings → Basic)",
        ),
        (
            "",
            {"IESAISTE_MESSENGER_PAGE_TOKEN": FB_TOKEN, "IESAISTE_MESSENGER_APP_SECRET": FB_SECRET},
            "messenger.verify_token",
            "",
            "8–256 printable characters of your choice, the same as in the app's webhook settings",
        ),
        (
            '[messenger]\napi_version = "25"\n',
            {},
            "messenger.api_version",
            "25",
            "a Graph API version such as v25.0",
        ),
        (
            "",
            {"IESAISTE_MESSENGER_API_URL": "graph.facebook.com"},
            "messenger.api_url",
            "graph.facebook.com",
            "an http(s) URL such as https://graph.facebook.com",
        ),
        (
            "[messenger]\nper_second = 1000\n",
            {},
            "messenger.per_second",
            1000,
            "a number of messages a second above 0, at most 300",
        ),
        ('[log]\nformat = "xml"\n', {}, "log.format", "xml", "text or json"),
        ("", {"IESAISTE_LOG_FORMAT": "yaml"}, "log.format", "yaml", "text or json"),
        (
            "[http]\nport = 9000\n[metrics]\nport = 9000\n",
            {},
            "metrics.port",
            9000,
            "a port other than http.port: the metrics must not be on the public port",
        ),
        (
            "",
            {"IESAISTE_METRICS_PORT": "ninety"},
            "IESAISTE_METRICS_PORT",
            "ninety",
            "a whole number from 0 to 65535",
        ),
    ],
)
def test_a_bad_value_names_the_key_the_value_and_what_is_expected(
    tmp_path: Path, toml: str, environ: dict[str, str], key: str, value: object, expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, toml), environ)
    assert (raised.value.key, raised.value.value, raised.value.expected) == (key, value, expected)
    assert str(raised.value) == f"{key} = {value!r}: expected {expected}"


def test_metrics_are_off_and_logs_are_text_unless_set(tmp_path: Path) -> None:
    plain = load(write(tmp_path, ""), {})
    assert (plain.metrics_port, plain.log_format) == (0, "text")
    config = load(
        write(tmp_path, '[log]\nformat = "JSON"\n[metrics]\nport = 9102\n'),
        {"IESAISTE_METRICS_PORT": "9103"},
    )
    assert (config.log_format, config.metrics_host, config.metrics_port) == (
        "json",
        "127.0.0.1",
        9103,
    )


def test_a_file_that_is_not_toml_is_named_with_what_tomllib_says(tmp_path: Path) -> None:
    path = write(tmp_path, "[http\n")
    with pytest.raises(ConfigError) as raised:
        load(path, {})
    assert (raised.value.key, raised.value.value, raised.value.expected) == (
        "--config",
        path,
        "valid TOML (Expected ']' at the end of a table declaration (at line 1, column 6))",
    )


def test_a_bad_token_is_reported_without_revealing_it() -> None:
    with pytest.raises(ConfigError) as raised:
        load(None, {"IESAISTE_TELEGRAM_TOKEN": "123:short-secret"})
    assert str(raised.value) == (
        "telegram.token = '123:…': expected a token from @BotFather, 123456:ABC…"
    )


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError) as raised:
        load(path, {})
    assert (raised.value.key, raised.value.value, raised.value.expected) == (
        "--config",
        path,
        "an existing TOML file",
    )


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("telegram:123456789", ("telegram", "123456789")),
        ("telegram: 42 ", ("telegram", "42")),
        ("telegram:4503599627370495", ("telegram", "4503599627370495")),  # 2**52 - 1
        (
            "webchat:0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            ("webchat", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
        ),
        ("messenger:1254459154682919", ("messenger", "1254459154682919")),
    ],
)
def test_a_staff_reference_takes_the_ids_each_platform_sends(
    ref: str, expected: tuple[str, str]
) -> None:
    assert parse_user_ref("user", ref) == expected


TELEGRAM_ID = "telegram:ID with ID a Telegram user id (a positive whole number, e.g. 123456789)"
WEBCHAT_ID = "webchat:ID with ID a web-chat id (the 32 hex digits the web chat issues)"
MESSENGER_ID = "messenger:ID with ID a Messenger id (PSID: digits only)"
ANY_CHANNEL = "CHANNEL:USER_ID with CHANNEL one of telegram, webchat, messenger"
OVERLONG = "telegram:" + "1" * 65
SHORTENED = "telegram:" + "1" * 31 + "…"  # 40 characters, then '…': one short line


@pytest.mark.parametrize(
    ("ref", "shown", "expected"),
    [
        ("telegram:abc", "telegram:abc", TELEGRAM_ID),
        ("telegram:-42", "telegram:-42", TELEGRAM_ID),
        ("telegram:0", "telegram:0", TELEGRAM_ID),
        ("telegram:042", "telegram:042", TELEGRAM_ID),
        ("telegram:4503599627370496", "telegram:4503599627370496", TELEGRAM_ID),  # over 52 bits
        (OVERLONG, SHORTENED, TELEGRAM_ID),
        ("telegram:12\n34", "telegram:12\n34", TELEGRAM_ID),
        ("telegram:12\t", "telegram:12\t", TELEGRAM_ID),
        ("telegram:١٢٣", "telegram:١٢٣", TELEGRAM_ID),  # digits, but not the ASCII ones
        ("webchat:hello", "webchat:hello", WEBCHAT_ID),
        (
            "webchat:0F1E2D3C4B5A69788796A5B4C3D2E1F0",
            "webchat:0F1E2D3C4B5A69788796A5B4C3D2E1F0",
            WEBCHAT_ID,
        ),
        ("messenger:abc", "messenger:abc", MESSENGER_ID),
        ("messenger:", "messenger:", MESSENGER_ID),
        ("signal:123", "signal:123", ANY_CHANNEL),
        (123, 123, ANY_CHANNEL),
    ],
)
def test_a_staff_reference_refuses_an_id_the_platform_never_sends(
    ref: object, shown: object, expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_user_ref("staff[0].user", ref)
    assert (raised.value.key, raised.value.value, raised.value.expected) == (
        "staff[0].user",
        shown,
        expected,
    )
    # One line: a newline in the id is shown escaped, by repr.
    assert str(raised.value) == f"staff[0].user = {shown!r}: expected {expected}"


def test_removal_takes_an_id_recorded_before_ids_were_checked() -> None:
    assert parse_user_ref("user", "telegram:12\n34", any_id=True) == ("telegram", "12\n34")
    with pytest.raises(ConfigError) as raised:
        parse_user_ref("user", OVERLONG, any_id=True)  # still too long for the column
    assert (raised.value.key, raised.value.value, raised.value.expected) == (
        "user",
        SHORTENED,
        TELEGRAM_ID,
    )


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgres://iesaiste:secret@db:5432/x", "postgres://iesaiste:…@db:5432/x"),
        ("postgres://iesaiste@db/x", "postgres://iesaiste@db/x"),
        ("postgres://u:p@ss:w/rd@db/x", "postgres://u:…@db/x"),
        (
            "postgres://u@db/x?password=secret&ssl=require",
            "postgres://u@db/x?password=…&ssl=require",
        ),
        ("u:secret@db/x", "u:…@db/x"),
        ("sqlite://data/a@b.sqlite3", "sqlite://data/a@b.sqlite3"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, masked: str) -> None:
    assert masked_url(url) == masked


TOKEN_EXPECTED = "expected a token from @BotFather, 123456:ABC…"


@pytest.mark.parametrize(
    ("environ", "secret", "line"),
    [
        (
            {"IESAISTE_DATABASE_URL": "mysql://root:hunter2@db/x"},
            "hunter2",
            "database.url = 'mysql://root:…@db/x': "
            "expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
        ),
        (
            {"IESAISTE_TELEGRAM_TOKEN": "ABCdefGhIJKlmnOPQRstuVWXyz0123456789"},
            "ABCdef",
            f"telegram.token = '…': {TOKEN_EXPECTED}",
        ),
        (
            {"IESAISTE_TELEGRAM_TOKEN": "secretbotid:ABCdefGhIJKlmnOPQRstuVWXyz"},
            "secretbotid",
            f"telegram.token = '…': {TOKEN_EXPECTED}",
        ),
        (
            {"IESAISTE_TELEGRAM_API_URL": "ftp://bot:hunter2@api.example.lv"},
            "hunter2",
            "telegram.api_url = 'ftp://bot:…@api.example.lv': "
            "expected an http(s) URL such as https://api.telegram.org",
        ),
        (
            {
                "IESAISTE_TELEGRAM_TOKEN": TOKEN,
                "IESAISTE_TELEGRAM_MODE": "webhook",
                "IESAISTE_TELEGRAM_WEBHOOK_URL": f"http://bot.example.lv/{TOKEN}",
            },
            TOKEN.split(":")[1],
            "telegram.webhook_url = 'http://bot.example.lv/…': expected the public https URL "
            "of /webhooks/telegram, e.g. https://bot.example.lv/webhooks/telegram",
        ),
    ],
    ids=["database-url", "token-without-colon", "token-with-a-word", "api-url", "webhook-url"],
)
def test_no_error_line_shows_a_password_or_a_token(
    environ: dict[str, str], secret: str, line: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(None, environ)
    assert str(raised.value) == line
    assert secret not in line


def test_a_config_file_in_another_encoding_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes('[municipality]\nname = "Ķekavas novads"\n'.encode("cp1257"))
    with pytest.raises(ConfigError) as raised:
        load(str(path), {})
    assert (raised.value.key, raised.value.value, raised.value.expected) == (
        "--config",
        str(path),
        "a file saved as UTF-8 (byte 0xcd on line 2 is not UTF-8)",
    )


def test_messenger_is_on_with_its_three_secrets_and_they_never_show(tmp_path: Path) -> None:
    config = load(
        write(tmp_path, ""),
        {
            "IESAISTE_MESSENGER_PAGE_TOKEN": FB_TOKEN,
            "IESAISTE_MESSENGER_APP_SECRET": FB_SECRET,
            "IESAISTE_MESSENGER_VERIFY_TOKEN": "my-verify-token",
        },
    )
    assert config.messenger.enabled and config.messenger.api_version == "v25.0"
    assert not load(write(tmp_path, ""), {}).messenger.enabled
    for bad in ({"IESAISTE_MESSENGER_APP_SECRET": FB_SECRET[:-1] + "!"},):
        with pytest.raises(ConfigError) as raised:
            load(write(tmp_path, ""), {"IESAISTE_MESSENGER_PAGE_TOKEN": FB_TOKEN, **bad})
        assert FB_SECRET[:-1] not in str(raised.value) and FB_TOKEN not in str(raised.value)
