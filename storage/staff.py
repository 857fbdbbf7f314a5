"""Staff roles by platform account, and the audit log of staff actions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.db import one_worker_at_a_time
from storage.models import AuditEntry, ChannelIdentity, StaffMember


@dataclass(frozen=True, slots=True)
class StaffRecord:
    channel: str
    external_id: str
    role: str
    granted_at: datetime


async def role_of(channel: str, external_id: str) -> str | None:
    row = await StaffMember.get_or_none(channel=channel, external_id=external_id)
    return row.role if row else None


async def grant(channel: str, external_id: str, role: str, *, actor: str) -> bool:
    """Give an account a role; True if anything changed."""
    row = await StaffMember.get_or_none(channel=channel, external_id=external_id)
    if row is not None and row.role == role:
        return False
    if row is None:
        await StaffMember.create(channel=channel, external_id=external_id, role=role)
    else:
        row.role = role
        await row.save(update_fields=["role"])
    await record(actor, "staff.grant", {"user": f"{channel}:{external_id}", "role": role})
    return True


async def revoke(channel: str, external_id: str, *, actor: str) -> bool:
    deleted = await StaffMember.filter(channel=channel, external_id=external_id).delete()
    if deleted:
        await record(actor, "staff.revoke", {"user": f"{channel}:{external_id}"})
    return bool(deleted)


async def list_staff() -> list[StaffRecord]:
    rows = await StaffMember.all().order_by("channel", "external_id")
    return [StaffRecord(r.channel, r.external_id, r.role, r.granted_at) for r in rows]


async def roles_on(channel: str, roles: Iterable[str]) -> list[tuple[str, str]]:
    """(account id, role) of the staff on a channel holding one of ``roles``."""
    rows = await StaffMember.filter(channel=channel, role__in=list(roles)).values_list(
        "external_id", "role"
    )
    return [(str(external_id), str(role)) for external_id, role in rows]


async def languages_of(channel: str, accounts: Iterable[str]) -> list[tuple[str, str]]:
    """(account id, chosen language or "") of accounts on a channel, in the order given."""
    wanted = list(dict.fromkeys(accounts))
    languages = dict(
        await ChannelIdentity.filter(channel=channel, external_id__in=wanted).values_list(
            "external_id", "resident__language"
        )
    )
    return [(external_id, str(languages.get(external_id) or "")) for external_id in wanted]


async def sync_from_config(grants: Iterable[tuple[str, str, str]]) -> None:
    """Staff listed in the configuration hold their role from every start on."""
    async with one_worker_at_a_time("staff"):
        for channel, external_id, role in grants:
            await grant(channel, external_id, role, actor="config")


async def record(actor: str, action: str, detail: Mapping[str, Any]) -> None:
    await AuditEntry.create(actor=actor, action=action, detail=dict(detail))


async def audit_log(limit: int = 100) -> list[AuditEntry]:
    return await AuditEntry.all().order_by("-id").limit(limit)
