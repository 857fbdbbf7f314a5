"""The staff's progress report: refreshed by one worker at a time, edited only on change,
given up when the platform will not edit, and the announcement done when all is out.

The channel here records the edits it is asked for; the real channels' edits are tested
end to end (tests/bot/test_staff_announcements.py, the web chat tests).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.messages import ChannelLimits, Reply
from bot.progress import refresh_reports
from storage import announcements, deliveries
from storage.models import Announcement, ChannelIdentity, Resident
from tests.phrases import (
    CANCELLED_NOBODY,
    GOING_OUT,
    GOING_OUT_ONE,
    GONE_OUT,
    GONE_OUT_ONE,
    STOPPED_BY_STAFF,
    progress,
    tr,
)

NOW = datetime.now(UTC)
RIGA = ZoneInfo("Europe/Riga")


@dataclass
class RecordingChannel:
    name: str = "telegram"
    limits: ChannelLimits = field(default=None)  # type: ignore[assignment]
    editable: bool = True
    edits: list[tuple[str, str, str]] = field(default_factory=list)

    async def send(self, recipient: str, reply: Reply) -> None:
        raise AssertionError("a report is never sent anew")

    async def edit(self, recipient: str, message_id: str, reply: Reply) -> bool:
        self.edits.append((recipient, message_id, reply.text))
        return self.editable


async def released(recipients: int, report: bool = True) -> Announcement:
    for index in range(recipients):
        resident = await Resident.create(language="en", onboarded_at=NOW)
        await ChannelIdentity.create(resident=resident, channel="telegram", external_id=str(index))
    announcement = await deliveries.create_announcement(
        author="telegram:900", texts={"lv": "Sveiki"}, audience={"kind": "all"}, send_at=NOW
    )
    if report:
        announcement.report = {
            "channel": "telegram",
            "chat": "900",
            "message": "77",
            "language": "en",
            "shown": "",
        }
        await announcement.save()
    await deliveries.release(announcement, NOW)
    return announcement


async def test_two_workers_refreshing_at_once_edit_the_report_once(database: str) -> None:
    await released(3)
    channel = RecordingChannel()
    edited = await asyncio.gather(
        refresh_reports({"telegram": channel}, RIGA), refresh_reports({"telegram": channel}, RIGA)
    )
    assert sorted(edited) == [0, 1]
    ((chat, message, text),) = channel.edits
    assert (chat, message) == ("900", "77")
    assert text == progress("en", 1, 3, (GOING_OUT_ONE, GOING_OUT), queued=3)


async def test_the_report_is_edited_only_when_its_figures_change_and_ends_final(
    database: str,
) -> None:
    announcement = await released(2)
    channel = RecordingChannel()
    every = timedelta(0)
    await refresh_reports({"telegram": channel}, RIGA, every)
    await refresh_reports({"telegram": channel}, RIGA, every)
    going = progress("en", announcement.id, 2, (GOING_OUT_ONE, GOING_OUT), queued=2)
    assert channel.edits == [("900", "77", going)], "nothing changed, nothing edited"

    claimed = await deliveries.claim("w", "telegram", 10)
    await deliveries.mark_sent([claimed[0].id])
    await deliveries.mark_blocked("telegram", claimed[1].external_id, "Forbidden")
    await refresh_reports({"telegram": channel}, RIGA, every)
    final = progress("en", announcement.id, 2, (GONE_OUT_ONE, GONE_OUT), sent=1, blocked=1)
    assert channel.edits[1:] == [("900", "77", final)]
    assert (await Announcement.get(id=announcement.id)).state == "done"
    await refresh_reports({"telegram": channel}, RIGA, every)
    assert len(channel.edits) == 2, "a done announcement is left alone"


async def test_a_report_the_platform_will_not_edit_is_given_up(database: str) -> None:
    announcement = await released(1)
    channel = RecordingChannel(editable=False)
    await refresh_reports({"telegram": channel}, RIGA, timedelta(0))
    await refresh_reports({"telegram": channel}, RIGA, timedelta(0))
    assert len(channel.edits) == 1
    assert (await Announcement.get(id=announcement.id)).report["message"] == ""


async def test_an_announcement_with_no_report_is_done_when_everything_is_out(
    database: str,
) -> None:
    announcement = await released(1, report=False)
    await refresh_reports({}, RIGA, timedelta(0))
    assert (await Announcement.get(id=announcement.id)).state == "released"
    (row,) = await deliveries.claim("w", "telegram", 10)
    await deliveries.mark_sent([row.id])
    await refresh_reports({}, RIGA, timedelta(0))
    assert (await Announcement.get(id=announcement.id)).state == "done"


async def test_a_report_says_so_once_when_its_announcement_is_cancelled_or_stopped(
    database: str,
) -> None:
    later = await deliveries.create_announcement(
        author="telegram:900",
        texts={"lv": "Vēlāk"},
        audience={"kind": "all"},
        send_at=NOW + timedelta(hours=1),
    )
    later.report = {"channel": "telegram", "chat": "900", "message": "78", "language": "en"}
    await later.save()
    going = await released(2)
    channel = RecordingChannel()
    await refresh_reports({"telegram": channel}, RIGA, timedelta(0))
    going_out = progress("en", going.id, 2, (GOING_OUT_ONE, GOING_OUT), queued=2)
    assert channel.edits == [("900", "77", going_out)], "only the one going out"

    await announcements.cancel(later.id, "telegram:901")
    await announcements.cancel(going.id, "telegram:901")
    await refresh_reports({"telegram": channel}, RIGA, timedelta(0))
    await refresh_reports({"telegram": channel}, RIGA, timedelta(0))
    final = {message: text for _, message, text in channel.edits[1:]}
    assert final == {
        "78": tr("en", CANCELLED_NOBODY, id=later.id),
        "77": progress("en", going.id, 2, STOPPED_BY_STAFF, cancelled=2),
    }
    assert len(channel.edits) == 3, "each said once"
