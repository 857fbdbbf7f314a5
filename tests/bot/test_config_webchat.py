"""The web chat's guard settings and the public URL: defaults, values, and bad values named."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from bot.core.config import ConfigError, load


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_defaults_limit_newcomers_forget_after_30_days_and_trust_no_proxy() -> None:
    config = load(None, {})
    assert config.webchat.new_residents_per_address_per_hour == 20
    assert config.webchat.forget_unfinished_after_days == 30
    assert config.webchat.secure_cookie is False
    assert (config.http_public_url, config.http_trusted_proxies) == ("", ())


def test_the_example_file_documents_and_sets_the_keys() -> None:
    config = load("config.example.toml", {})
    assert config.webchat.new_residents_per_address_per_hour == 20
    assert config.webchat.forget_unfinished_after_days == 30
    assert config.webchat.secure_cookie is False
    assert (config.http_public_url, config.http_trusted_proxies) == ("", ())
    text = Path("config.example.toml").read_text(encoding="utf-8")
    for key in (
        "public_url",
        "trusted_proxies",
        "secure_cookie",
        "new_residents_per_address_per_hour",
        "forget_unfinished_after_days",
    ):
        assert f"{key} =" in text, key


def test_the_values_are_read(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            '[http]\npublic_url = "https://bot.example.lv/"\n'
            'trusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1"]\n'
            "[webchat]\nsecure_cookie = true\nnew_residents_per_address_per_hour = 0\n"
            "forget_unfinished_after_days = 7\n",
        ),
        {},
    )
    assert config.http_public_url == "https://bot.example.lv"
    assert config.http_trusted_proxies == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert config.webchat.secure_cookie is True
    assert config.webchat.new_residents_per_address_per_hour == 0
    assert config.webchat.forget_unfinished_after_days == 7


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[http]\npublic_url = "bot.example.lv"\n', "http.public_url"),
        ('[http]\npublic_url = "ftp://bot.example.lv"\n', "http.public_url"),
        ("[http]\npublic_url = 443\n", "http.public_url"),
        ('[http]\ntrusted_proxies = "127.0.0.1"\n', "http.trusted_proxies"),
        ('[http]\ntrusted_proxies = ["127.0.0.1", "10.0.0.300"]\n', "http.trusted_proxies[1]"),
        ("[http]\ntrusted_proxies = [1]\n", "http.trusted_proxies[0]"),
        ('[webchat]\nsecure_cookie = "yes"\n', "webchat.secure_cookie"),
        (
            "[webchat]\nnew_residents_per_address_per_hour = -1\n",
            "webchat.new_residents_per_address_per_hour",
        ),
        ("[webchat]\nforget_unfinished_after_days = 0\n", "webchat.forget_unfinished_after_days"),
    ],
)
def test_a_bad_value_is_named(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, text), {})
    assert raised.value.key == key
