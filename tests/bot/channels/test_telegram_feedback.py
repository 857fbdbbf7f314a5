"""The feedback loop end to end: the whole bot against the Bot API stand-in over real HTTP,
its delivery worker sending every push. A status change reaches the author and a follower
once each, in their languages, with the explanation and the promised date; "Reply" reaches
the department's staff; "Is it fixed?" — "No" reopens the proposal, the rating is one tap,
and the author hears it was reopened."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bot.core.i18n import translator
from bot.scheduler import ask_if_fixed
from storage import proposals
from storage.models import ChannelIdentity, Proposal, ProposalComment, ProposalRating, Resident
from storage.proposals import Draft
from tests.bot.channels.telegram_helpers import Chat
from tests.bot.test_announcements import config_without_quiet_hours, onboarded
from tests.conftest import RuntimeFactory
from tests.phrases import tr
from tests.standins.telegram_api import BotApiStandIn

ANNA, JANIS, STAFF = 1001, 1002, 1009  # the author (English), a follower (Latvian), staff
PROPOSALS = """
[proposals]
ask_fixed_after = "90s"

[[proposals.departments]]
id = "roads"
name = { lv = "Ceļu nodaļa", en = "Roads department", ru = "Дорожный отдел" }
staff = ["telegram:1009"]

[[proposals.categories]]
id = "roads"
name = { lv = "Ceļi", en = "Roads", ru = "Дороги" }
department = "roads"
"""
TEXT = "A deep pothole on Brīvības iela by the school"
CATEGORY = {"lv": "Ceļi", "en": "Roads"}


async def resident(user_id: int) -> Resident:
    identity = await ChannelIdentity.get(channel="telegram", external_id=str(user_id))
    return await Resident.get(id=identity.resident_id)  # type: ignore[attr-defined]


def about(language: str, proposal: Proposal) -> dict[str, str]:
    return {"reference": proposal.reference, "category": CATEGORY[language], "text": TEXT}


async def test_status_reply_and_is_it_fixed_through_telegram(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    config = config_without_quiet_hours(tmp_path, PROPOSALS)
    async with BotApiStandIn() as api:
        api.add_user(ANNA, "Anna", language_code="en")
        api.add_user(JANIS, "Jānis", language_code="lv")
        api.add_user(STAFF, "Inese", language_code="lv")
        runtime = await start_bot(
            config, IESAISTE_TELEGRAM_API_URL=api.url, IESAISTE_TELEGRAM_TOKEN=api.token
        )
        await onboarded(str(ANNA), "en", "centrs")
        await onboarded(str(JANIS), "lv", "centrs")
        await onboarded(str(STAFF), "lv", "centrs")
        anna, janis = Chat(api, ANNA), Chat(api, JANIS)
        proposal = await proposals.submit(
            await resident(ANNA), Draft("roads", "roads", TEXT, "en", "centrs")
        )
        await proposals.follow(proposal, await resident(JANIS))

        # A status change: once to each, in their language, with how it was taken into
        # account, the promised date, and "Reply".
        await proposals.change_status(
            proposal.id,
            "planned",
            actor="cli",
            explanation="Asfaltēs maijā.",
            expected_on=date(2027, 5, 1),
        )
        (to_anna,) = await api.wait_for_messages(ANNA, 1)
        (to_janis,) = await api.wait_for_messages(JANIS, 1)
        for message, lang, line in (
            (to_anna, "en", "Your proposal {reference} ({category}: {text}) is now: {status}."),
            (
                to_janis,
                "lv",
                "A proposal you follow, {reference} ({category}: {text}), is now: {status}.",
            ),
        ):
            assert message.text == "\n\n".join(
                [
                    tr(lang, line, status=tr(lang, "planned"), **about(lang, proposal)),
                    tr(
                        lang,
                        "How it was taken into account: {explanation}",
                        explanation="Asfaltēs maijā.",
                    ),
                    tr(lang, "Promised by: {date}", date=translator(lang).day(date(2027, 5, 1))),
                    tr(lang, "Press “Reply” to write to the department about it."),
                ]
            )
            assert message.callback_data() == [f"pr:r:{proposal.id}"]

        # "Reply": what Anna writes reaches the department's staff.
        (prompt,) = await anna.press(to_anna, "Reply")
        assert prompt.text == tr(
            "en",
            "Write your reply to the department about {reference} ({category}: {text}) in one "
            "message. It goes to the staff who handle it.",
            **about("en", proposal),
        )
        (sent,) = await anna.send("It gets deeper every day.")
        assert sent.text.startswith(
            tr(
                "en",
                "Thank you: your reply about {reference} has reached {department}.",
                reference=proposal.reference,
                department="Roads department",
            )
        )
        (note,) = await api.wait_for_messages(STAFF, 1)
        assert note.text == tr(
            "lv",
            "The author of {reference} ({category}: {text}) wrote:\n\n{comment}",
            comment="It gets deeper every day.",
            **about("lv", proposal),
        )
        assert await ProposalComment.filter(proposal_id=proposal.id).count() == 1

        # Implemented; asked after the delay (the job called with the time it would run at).
        await proposals.change_status(
            proposal.id,
            "implemented",
            actor="cli",
            explanation="Salabots.",
            ask_fixed_after=runtime.config.proposals.ask_fixed_after,
        )
        await api.wait_for_messages(ANNA, 4)  # the "implemented" push after the two above
        await api.wait_for_messages(JANIS, 2)
        assert await ask_if_fixed(runtime.config) == 0  # not yet
        later = datetime.now(UTC) + timedelta(minutes=2)
        assert await ask_if_fixed(runtime.config, later) == 1
        assert await ask_if_fixed(runtime.config, later) == 0  # asked once
        question = (await api.wait_for_messages(JANIS, 3))[-1]
        assert question.text.startswith(
            tr(
                "lv",
                "Is it fixed? {reference} ({category}: {text}) was marked as implemented. "
                "Please tell us whether the problem is solved.",
                **about("lv", proposal),
            )
        )
        assert question.callback_data() == [
            f"pr:fx:{proposal.id}:1:{answer}" for answer in ("yes", "partly", "no")
        ]

        # Jānis says no: reopened, he is told so, rates in one tap.
        replies = await janis.press(question, tr("lv", "No, not fixed"), replies=2)
        rate = next(m for m in replies if m.callback_data()[:1] == [f"pr:rt:{proposal.id}:1:1"])
        assert (
            tr(
                "lv",
                "Thank you for telling us. {reference} has been reopened, and the department has "
                "been told it is not done yet.",
                reference=proposal.reference,
            )
            in rate.text
        )
        await janis.press(rate, "4")
        assert (await Proposal.get(id=proposal.id)).status == "in_progress"
        rating = await ProposalRating.get()
        assert (rating.answer, rating.rating) == ("no", 4)

        # Anna hears it was reopened (once); the department hears of it too.
        told = tr(
            "en",
            "Your proposal {reference} ({category}: {text}) has been reopened: residents "
            "said it is not fixed yet. The department is working on it again.",
            **about("en", proposal),
        )
        messages = await api.wait_for_messages(ANNA, 6)
        assert [m.text.startswith(told) for m in messages].count(True) == 1
        staff_notes = await api.wait_for_messages(STAFF, 2)
        assert staff_notes[-1].text == tr(
            "lv",
            "{reference} ({category}: {text}) was reopened: a resident answered that it is not "
            "fixed. It is in progress again.",
            **about("lv", proposal),
        )
        status_pushes = [m for m in api.delivered(ANNA) if "pr:r:" in "".join(m.callback_data())]
        assert len(status_pushes) == 3  # planned, implemented, reopened: each once
