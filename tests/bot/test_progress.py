"""The staff's progress report: queued by one worker at a time, edited through the outbox
(rendered when it goes, with the figures of then), only on change, given up when the
platform will not edit, and the announcement done when all is out.

The staff member writes on the web chat here and the residents are on Telegram, so that a
worker with only the web chat delivers the reports and leaves the announcement's own rows
to the test. The channel records the edits it is asked for; the real channels' edits are
tested end to end (tests/bot/test_staff_announcements.py, the web chat tests).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.messages import ChannelLimits, Reply
from bot.delivery import DeliveryWorker
from bot.pacing import Pacer
from bot.progress import refresh_reports
from dialogs.pushes import Pushes
from storage import announcements, deliveries
from storage.models import Announcement, ChannelIdentity, Delivery, Resident
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
    name: str = "webchat"
    limits: ChannelLimits = field(default=None)  # type: ignore[assignment]
    editable: bool = True
    edits: list[tuple[str, str, str]] = field(default_factory=list)

    async def send(self, recipient: str, reply: Reply) -> str:
        raise AssertionError("a report is never sent anew")

    async def edit(self, recipient: str, message_id: str, reply: Reply) -> bool:
        self.edits.append((recipient, message_id, reply.text))
        return self.editable


async def deliver(channel: RecordingChannel) -> int:
    """What a worker of the staff's channel does with the queued report edits."""
    worker = DeliveryWorker(
        {"webchat": channel},  # type: ignore[dict-item]
        Pushes(RIGA),
        {"webchat": Pacer(1000, 1000)},
        zone=RIGA,
        worker_id="reports",
        quiet_start=time(0, 0),
        quiet_end=time(0, 0),
    )
    return await worker.drain_once()


async def refresh(channel: RecordingChannel, every: timedelta = timedelta(0)) -> int:
    queued = await refresh_reports(every)
    await deliver(channel)
    return queued


async def released(recipients: int, report: bool = True) -> Announcement:
    # The staff member: a resident too (every push is to one), whose language is English.
    staff = await Resident.create(language="en")
    await ChannelIdentity.create(resident=staff, channel="webchat", external_id="900")
    for index in range(recipients):
        resident = await Resident.create(language="en", onboarded_at=NOW)
        await ChannelIdentity.create(resident=resident, channel="telegram", external_id=str(index))
    announcement = await deliveries.create_announcement(
        author="webchat:900", texts={"lv": "Sveiki"}, audience={"kind": "all"}, send_at=NOW
    )
    if report:
        announcement.report = {
            "channel": "webchat",
            "chat": "900",
            "message": "m-77",
            "language": "en",
        }
        await announcement.save()
    await deliveries.release(announcement, NOW)
    return announcement


async def test_two_workers_refreshing_at_once_queue_the_report_once(database: str) -> None:
    await released(3)
    queued = await asyncio.gather(refresh_reports(), refresh_reports())
    assert sorted(queued) == [0, 1]
    channel = RecordingChannel()
    assert await deliver(channel) == 1
    ((chat, message, text),) = channel.edits
    assert (chat, message) == ("900", "m-77")
    assert text == progress("en", 1, 3, (GOING_OUT_ONE, GOING_OUT), queued=3)
    report = await Delivery.get(channel="webchat")
    assert (report.source_kind, report.dedupe_key, report.priority, report.quiet_exempt) == (
        "announcement_report",
        "announcement:1:report",
        deliveries.PERSONAL,
        True,
    )


async def test_the_report_is_edited_only_when_its_figures_change_and_ends_final(
    database: str,
) -> None:
    announcement = await released(2)
    channel = RecordingChannel()
    assert await refresh(channel) == 1
    assert await refresh(channel) == 1, "queued again once sent"
    going = progress("en", announcement.id, 2, (GOING_OUT_ONE, GOING_OUT), queued=2)
    assert channel.edits == [("900", "m-77", going)], "nothing changed, nothing edited"

    claimed = await deliveries.claim("w", "telegram", 10)
    await deliveries.mark_sent(claimed[0].id)
    await deliveries.mark_blocked("telegram", claimed[1].external_id, "Forbidden")
    await refresh(channel)
    final = progress("en", announcement.id, 2, (GONE_OUT_ONE, GONE_OUT), sent=1, blocked=1)
    assert channel.edits[1:] == [("900", "m-77", final)]
    assert (await Announcement.get(id=announcement.id)).state == "done"
    assert await refresh(channel) == 0
    assert len(channel.edits) == 2, "a done announcement is left alone"


async def test_a_report_the_platform_will_not_edit_is_given_up(database: str) -> None:
    await released(1)
    channel = RecordingChannel(editable=False)
    assert await refresh(channel) == 1
    assert await refresh(channel) == 0, "not queued again"
    assert len(channel.edits) == 1
    report = await Delivery.get(channel="webchat")
    assert (report.state, report.message_id) == ("failed", "")


async def test_an_announcement_with_no_report_is_done_when_everything_is_out(
    database: str,
) -> None:
    announcement = await released(1, report=False)
    assert await refresh_reports(timedelta(0)) == 0
    assert (await Announcement.get(id=announcement.id)).state == "released"
    (row,) = await deliveries.claim("w", "telegram", 10)
    await deliveries.mark_sent(row.id)
    await refresh_reports(timedelta(0))
    assert (await Announcement.get(id=announcement.id)).state == "done"


async def test_a_report_says_so_once_when_its_announcement_is_cancelled_or_stopped(
    database: str,
) -> None:
    going = await released(2)
    later = await deliveries.create_announcement(
        author="webchat:900",
        texts={"lv": "Vēlāk"},
        audience={"kind": "all"},
        send_at=NOW + timedelta(hours=1),
    )
    later.report = {"channel": "webchat", "chat": "900", "message": "m-78", "language": "en"}
    await later.save()
    channel = RecordingChannel()
    await refresh(channel)
    going_out = progress("en", going.id, 2, (GOING_OUT_ONE, GOING_OUT), queued=2)
    assert channel.edits == [("900", "m-77", going_out)], "only the one going out"

    await announcements.cancel(later.id, "webchat:901")
    await announcements.cancel(going.id, "webchat:901")
    await refresh(channel)
    await refresh(channel)
    final = {message: text for _, message, text in channel.edits[1:]}
    assert final == {
        "m-78": tr("en", CANCELLED_NOBODY, id=later.id),
        "m-77": progress("en", going.id, 2, STOPPED_BY_STAFF, cancelled=2),
    }
    assert len(channel.edits) == 3, "each said once"
