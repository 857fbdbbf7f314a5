"""``iesaiste messenger setup|check`` as an operator runs them, against the stand-in over HTTP.

Each test runs the real ``iesaiste`` process with the page token in the environment
and ``IESAISTE_MESSENGER_API_URL`` pointing at a local Graph API (``GraphCore`` with
the Profile API of ``tests.standins.graph_profile``), then reads what the page ended
up with and what the operator was told. No output may hold a secret.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot import messenger_cli
from bot.core.config import Config
from bot.core.i18n import translator
from bot.messenger_cli import GREETING, MENU
from tests.bot.test_cli import iesaiste
from tests.standins.graph_core import APP_SECRET, PAGE_ID, PAGE_TOKEN, GraphCore, GraphFault
from tests.standins.graph_profile import GraphProfile

VERIFY_TOKEN = "verify-me-please-42"
PUBLIC_URL = "https://bot.example.lv"


@pytest_asyncio.fixture
async def page() -> AsyncIterator[GraphProfile]:
    core = await GraphCore().start()
    try:
        yield GraphProfile(core)
    finally:
        await core.stop()


def environment(
    page: GraphProfile,
    tmp_path: Path,
    public_url: str = PUBLIC_URL,
    name: str = "Ozolnieku novads",
) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text(f'[municipality]\nname = "{name}"\n\n[http]\npublic_url = "{public_url}"\n')
    return {
        "IESAISTE_CONFIG": str(config),
        "IESAISTE_DATABASE_URL": f"sqlite://{tmp_path / 'never.sqlite3'}",
        "IESAISTE_MESSENGER_PAGE_TOKEN": PAGE_TOKEN,
        "IESAISTE_MESSENGER_APP_SECRET": APP_SECRET,
        "IESAISTE_MESSENGER_VERIFY_TOKEN": VERIFY_TOKEN,
        "IESAISTE_MESSENGER_API_URL": page.core.url,
    }


def no_secret(*outputs: str) -> None:
    for output in outputs:
        for secret in (PAGE_TOKEN, APP_SECRET, VERIFY_TOKEN):
            assert secret not in output


async def healthy(page: GraphProfile, tmp_path: Path) -> None:
    """A page as it should be: subscribed, and setup run once."""
    page.subscribe("messages", "messaging_postbacks", "messaging_referrals")
    code, _, err = await iesaiste("messenger", "setup", env=environment(page, tmp_path))
    assert code == 0, err


# --- setup ---------------------------------------------------------------------------
async def test_setup_sets_get_started_greeting_and_menu_in_three_languages(
    page: GraphProfile, tmp_path: Path
) -> None:
    code, out, err = await iesaiste("messenger", "setup", env=environment(page, tmp_path))

    assert (code, err) == (0, "")
    assert page.profile["get_started"] == {"payload": "/start"}
    greetings = {g["locale"]: g["text"] for g in page.profile["greeting"]}
    assert list(greetings) == ["default", "en_US", "ru_RU"]
    for locale, language in (("default", "lv"), ("en_US", "en"), ("ru_RU", "ru")):
        expected = translator(language).gettext(GREETING, municipality="Ozolnieku novads")
        assert greetings[locale] == expected
        assert f"greeting ({locale}): {expected}" in out.splitlines()
        assert "Ozolnieku novads" in greetings[locale] and len(greetings[locale]) <= 160
    menus = {m["locale"]: m for m in page.profile["persistent_menu"]}
    assert list(menus) == ["default", "en_US", "ru_RU"]
    for locale, menu in menus.items():
        assert menu["composer_input_disabled"] is False
        actions = menu["call_to_actions"]
        assert [a["payload"] for a in actions] == [f"/{name}" for name, _ in MENU]
        assert all(a["type"] == "postback" and 0 < len(a["title"]) <= 30 for a in actions)
        titles = " | ".join(a["title"] for a in actions)
        assert f"menu ({locale}): {titles}" in out.splitlines()
    assert menus["default"]["call_to_actions"][0]["title"] == "Galvenā izvēlne"
    assert menus["ru_RU"]["call_to_actions"][-1]["title"] == "Помощь"
    assert [c.path for c in page.core.calls] == ["/me/messenger_profile"]
    no_secret(out, err)


async def test_a_long_municipality_name_falls_back_to_the_short_greeting(
    page: GraphProfile, tmp_path: Path
) -> None:
    env = environment(page, tmp_path, name="Ļoti garā nosaukuma novada pašvaldības " * 3)

    code, _, err = await iesaiste("messenger", "setup", env=env)

    assert (code, err) == (0, "")
    assert all(len(g["text"]) <= 160 for g in page.profile["greeting"])
    assert all("novada" not in g["text"] for g in page.profile["greeting"])


async def test_setup_says_what_meta_refused_in_one_line(page: GraphProfile, tmp_path: Path) -> None:
    page.core.fail_next(
        "/me/messenger_profile",
        GraphFault(613, "Calls to this api have exceeded the rate limit.", 2534040),
    )
    code, out, err = await iesaiste("messenger", "setup", env=environment(page, tmp_path))

    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "code 613, subcode 2534040: Calls to this api have exceeded the rate limit." in err
    assert page.profile == {}
    no_secret(out, err)


async def test_setup_with_a_refused_token_says_so_without_the_token(
    page: GraphProfile, tmp_path: Path
) -> None:
    page.core.expire_token()
    code, out, err = await iesaiste("messenger", "setup", env=environment(page, tmp_path))

    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "the page access token was refused" in err
    assert "code 190, subcode 467" in err
    no_secret(out, err)


async def test_no_answer_from_the_graph_api_is_one_line(tmp_path: Path) -> None:
    core = await GraphCore().start()
    page = GraphProfile(core)
    await core.stop()  # nobody listens there any more
    code, out, err = await iesaiste("messenger", "check", env=environment(page, tmp_path))

    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith(f"iesaiste: no answer from the Graph API at {core.url}")


@pytest.mark.parametrize("command", ["setup", "check"])
async def test_without_a_page_token_the_command_names_the_setting(
    tmp_path: Path, command: str
) -> None:
    env = {"IESAISTE_DATABASE_URL": f"sqlite://{tmp_path / 'never.sqlite3'}"}
    code, out, err = await iesaiste("messenger", command, env=env)

    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("iesaiste: messenger.page_token = ''")
    assert not (tmp_path / "never.sqlite3").exists()


# --- check ---------------------------------------------------------------------------
async def test_check_on_a_healthy_page_says_all_is_well(page: GraphProfile, tmp_path: Path) -> None:
    await healthy(page, tmp_path)
    code, out, err = await iesaiste("messenger", "check", env=environment(page, tmp_path))

    assert (code, err) == (0, "")
    assert f"page: Demo novads (id {PAGE_ID}): the page access token works" in out
    assert "subscriptions: Iesaiste receives messages, messaging_postbacks" in out
    assert "profile: Get Started, the greeting and the persistent menu are set" in out
    assert f"webhook URL for Meta's dashboard: {PUBLIC_URL}/webhooks/messenger" in out
    assert "recommended" not in out
    assert not (tmp_path / "never.sqlite3").exists()  # no database needed
    no_secret(out, err)


async def test_check_with_a_refused_token(page: GraphProfile, tmp_path: Path) -> None:
    await healthy(page, tmp_path)
    page.core.expire_token()
    code, out, err = await iesaiste("messenger", "check", env=environment(page, tmp_path))

    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("iesaiste: the page access token was refused: Error validating")
    assert "messenger.page_token" in err
    no_secret(out, err)


async def test_check_names_a_missing_subscription_and_where_to_fix_it(
    page: GraphProfile, tmp_path: Path
) -> None:
    await healthy(page, tmp_path)
    page.subscribe("messages")
    code, out, err = await iesaiste("messenger", "check", env=environment(page, tmp_path))

    assert code == 1
    assert err.splitlines() == [
        "iesaiste: the app Iesaiste is not subscribed to messaging_postbacks: in Meta's "
        "dashboard: your app → Messenger → Messenger API Settings → Webhooks, Add "
        "subscriptions for the page: messaging_postbacks"
    ]
    assert "recommended: subscribe Iesaiste to messaging_referrals" in out


async def test_check_with_no_app_subscribed(page: GraphProfile, tmp_path: Path) -> None:
    await healthy(page, tmp_path)
    page.apps.clear()
    code, _, err = await iesaiste("messenger", "check", env=environment(page, tmp_path))

    assert code == 1
    [line] = err.splitlines()
    assert line.startswith("iesaiste: no app is subscribed to the page's events")
    assert line.endswith("messages, messaging_postbacks, messaging_referrals")


async def test_check_says_when_setup_has_not_been_run(page: GraphProfile, tmp_path: Path) -> None:
    page.subscribe("messages", "messaging_postbacks", "messaging_referrals")
    code, out, err = await iesaiste("messenger", "check", env=environment(page, tmp_path))

    assert code == 1
    assert err.splitlines() == [
        "iesaiste: get_started, greeting, persistent_menu not set: run iesaiste messenger setup"
    ]
    assert "the page access token works" in out


async def test_check_wants_an_https_public_url(page: GraphProfile, tmp_path: Path) -> None:
    await healthy(page, tmp_path)
    env = environment(page, tmp_path, public_url="http://bot.example.lv")
    code, _, err = await iesaiste("messenger", "check", env=env)

    assert code == 1
    [line] = err.splitlines()
    assert line.startswith("iesaiste: http.public_url = 'http://bot.example.lv': Meta delivers")
    assert "<public_url>/webhooks/messenger" in line


# --- the texts, checked before anything is sent ---------------------------------------
def test_every_menu_item_is_a_command_residents_have() -> None:
    from handlers.commands import MENU_COMMANDS

    assert {name for name, _ in MENU} <= {name for name, _ in MENU_COMMANDS}


def test_a_title_over_30_characters_is_refused_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(messenger_cli, "MENU", (("help", "Palīdzība visos jautājumos un lietās"),))
    with pytest.raises(ValueError, match="is over 30"):
        messenger_cli.profile(Config())


def test_the_example_configuration_documents_every_messenger_key() -> None:
    from dataclasses import fields

    from bot.core.config import MessengerConfig, load

    text = Path("config.example.toml").read_text(encoding="utf-8")
    section = text.split("[messenger]\n", 1)[1].split("\n[", 1)[0]
    for key in (f.name for f in fields(MessengerConfig)):
        assert f"\n{key} = " in section, key
    assert load("config.example.toml", {}).messenger == MessengerConfig()


def test_the_readme_tells_how_to_connect_a_page() -> None:
    readme = Path("README.md").read_text(encoding="utf-8")
    for needed in (
        "## Connecting a Facebook page",
        "### What the 24-hour rule means on Messenger",
        "<public_url>/webhooks/messenger",
        "`pages_messaging`",
        "`messaging_referrals`",
        "iesaiste messenger setup",
        "iesaiste messenger check",
    ):
        assert needed in readme, needed
