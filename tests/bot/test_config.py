"""Configuration: defaults run the demo, the environment overrides, bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import DEFAULT_DATABASE_URL, ConfigError, load

TOKEN = "123456:ABCdefGhIJKlmnOPQRstuVWXyz0123456789"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_with_no_file_the_demo_municipality_runs_on_sqlite_without_telegram() -> None:
    config = load(None, {})
    assert config.municipality.name == "Demo novads"
    assert config.municipality.timezone == "Europe/Riga"
    assert [n.id for n in config.municipality.neighbourhoods][:2] == ["centrs", "jaunciems"]
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
    assert config.database_url.startswith("postgres://")
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
    assert config.municipality.neighbourhoods[0].name("ru") == "Centrs"  # falls back to Latvian
    assert config.municipality.topics[0].name("en") == "Ceļi"
    assert config.staff[0].channel == "telegram" and config.staff[0].role == "moderator"


@pytest.mark.parametrize(
    ("toml", "environ", "key", "expected"),
    [
        (
            '[municipality]\ntimezone = "Europe/Rigaa"\n',
            {},
            "municipality.timezone",
            "IANA time zone",
        ),
        (
            '[municipality]\ndefault_language = "de"\n',
            {},
            "municipality.default_language",
            "lv, en, ru",
        ),
        ("[http]\nport = 70000\n", {}, "http.port", "from 1 to 65535"),
        ("", {"IESAISTE_HTTP_PORT": "eighty"}, "IESAISTE_HTTP_PORT", "whole number"),
        ('[database]\nurl = "mysql://x"\n', {}, "database.url", "sqlite://"),
        ("", {"IESAISTE_TELEGRAM_API_URL": "api.telegram.org"}, "telegram.api_url", "http(s) URL"),
        ("", {"IESAISTE_TELEGRAM_TOKEN": "not-a-token"}, "telegram.token", "@BotFather"),
        ('[telegram]\nmode = "push"\n', {}, "telegram.mode", "polling or webhook"),
        (
            '[telegram]\nmode = "webhook"\n',
            {"IESAISTE_TELEGRAM_TOKEN": TOKEN},
            "telegram.webhook_url",
            "public https URL",
        ),
        ('[[staff]]\nuser = "123"\nrole = "admin"\n', {}, "staff[0].user", "CHANNEL:USER_ID"),
        (
            '[[staff]]\nuser = "telegram:1"\nrole = "boss"\n',
            {},
            "staff[0].role",
            "admin, moderator",
        ),
        (
            '[[municipality.topics]]\nid = "Roads!"\nname = "x"\n',
            {},
            "municipality.topics[0].id",
            "lower-case",
        ),
        (
            '[[municipality.topics]]\nid = "a"\nname = { en = "A" }\n',
            {},
            "municipality.topics[0].name",
            "Latvian",
        ),
        ("[htttp]\nport = 1\n", {}, "htttp", "known key"),
        ("[delivery]\ntelegram_per_second = 0\n", {}, "delivery.telegram_per_second", "above 0"),
        ("[delivery]\ntelegram_per_second = 5000\n", {}, "delivery.telegram_per_second", "1000"),
        ('[delivery]\nquiet_start = "9pm"\n', {}, "delivery.quiet_start", "HH:MM"),
        ("[http\n", {}, "--config", "valid TOML"),
    ],
)
def test_a_bad_value_names_the_key_the_value_and_what_is_expected(
    tmp_path: Path, toml: str, environ: dict[str, str], key: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, toml), environ)
    assert raised.value.key == key
    assert expected in str(raised.value)


def test_a_bad_token_is_reported_without_revealing_it() -> None:
    with pytest.raises(ConfigError) as raised:
        load(None, {"IESAISTE_TELEGRAM_TOKEN": "123:short-secret"})
    assert "short-secret" not in str(raised.value)


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="an existing TOML file"):
        load(str(tmp_path / "nope.toml"), {})
