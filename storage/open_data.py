"""The public view of proposals, for open data (Open311 GeoReport v2, GeoJSON, exports).

What is public: every proposal that is neither hidden nor withdrawn, duplicates
included (closed, pointing at the proposal they were merged into). What is never
here: who wrote, followed or supported it, and what anyone wrote back. Reads are
built for thousands of rows: one query for the page of proposals (the merged-into
reference joined in), one more for their approved photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from tortoise import connections
from tortoise.queryset import QuerySet, ValuesQuery

from storage.models import Proposal, ProposalComment, ProposalPhoto
from storage.proposal_states import CLOSED, WITHDRAWN

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

# The columns of a public request; nothing here names a resident.
_FIELDS = (
    "id",
    "reference",
    "status",
    "explanation",
    "category",
    "department",
    "neighbourhood",
    "text",
    "address",
    "latitude",
    "longitude",
    "expected_on",
    "passed_to",
    "supporters",
    "created_at",
    "updated_at",
    "resolved_at",
    "duplicate_of__reference",
)


@dataclass(frozen=True, slots=True)
class PublicRequest:
    """One proposal as open data shows it."""

    id: int
    reference: str
    status: str
    explanation: str
    category: str
    department: str
    neighbourhood: str
    text: str
    address: str
    latitude: float | None
    longitude: float | None
    expected_on: date | None
    passed_to: str
    supporters: int
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    merged_into: str  # the reference of the proposal it is a duplicate of, or ""
    photo_keys: tuple[str, ...]  # approved photos only, oldest first

    @property
    def closed(self) -> bool:
        return self.status in CLOSED


@dataclass(frozen=True, slots=True)
class Filters:
    """GeoReport's query parameters, already checked. ``references`` overrides the rest."""

    references: Sequence[str] = ()
    service_codes: Sequence[str] = ()
    start: datetime | None = None  # requested (created) at or after
    end: datetime | None = None  # requested before
    closed: bool | None = None  # None: open and closed
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE


def _public() -> QuerySet[Proposal]:
    """Neither hidden nor withdrawn: what anyone may see."""
    return Proposal.filter(hidden_at__isnull=True).exclude(status=WITHDRAWN)


async def requests(filters: Filters) -> list[PublicRequest]:
    """A page of public requests, newest first."""
    query = _public()
    if filters.references:
        query = query.filter(reference__in=list(filters.references))
    else:
        if filters.service_codes:
            query = query.filter(category__in=list(filters.service_codes))
        if filters.start is not None:
            query = query.filter(created_at__gte=filters.start)
        if filters.end is not None:
            query = query.filter(created_at__lt=filters.end)
        if filters.closed is True:
            query = query.filter(status__in=list(CLOSED))
        elif filters.closed is False:
            query = query.exclude(status__in=list(CLOSED))
    size = max(1, min(filters.page_size, MAX_PAGE_SIZE))
    page = query.order_by("-created_at", "-id").offset((max(filters.page, 1) - 1) * size)
    return await _with_photos(await _rows(page.limit(size).values(*_FIELDS)))


async def request(reference: str) -> PublicRequest | None:
    """One public request by its reference; None when there is none, or it is not public."""
    found = await requests(Filters(references=[reference], page_size=1))
    return found[0] if found else None


async def every_request() -> list[PublicRequest]:
    """All public requests, newest first: for an export."""
    return await _with_photos(
        await _rows(_public().order_by("-created_at", "-id").values(*_FIELDS))
    )


_DATETIMES = ("created_at", "updated_at", "resolved_at")


async def _rows(query: ValuesQuery[Literal[False]]) -> list[dict[str, Any]]:
    """The rows of a ``values()`` query, the time columns read with ``fromisoformat``.

    Tortoise reads each SQLite time with the pure-Python ``iso8601`` parser: two thirds
    of the time a page of 1,000 requests took. PostgreSQL's driver hands over
    ``datetime`` and ``date`` objects already.
    """
    query._choose_db_if_not_chosen()
    query._make_query()
    rows = await query._db.execute_query_dict(*query.query.get_parameterized_sql())
    for row in rows:
        for name in _DATETIMES:
            value = row[name]
            if isinstance(value, str):
                moment = datetime.fromisoformat(value)
                row[name] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if isinstance(row["expected_on"], str):
            row["expected_on"] = date.fromisoformat(row["expected_on"])
    return rows


async def _with_photos(rows: list[dict[str, object]]) -> list[PublicRequest]:
    ids = [int(row["id"]) for row in rows]  # type: ignore[call-overload]
    keys: dict[int, list[str]] = {}
    if ids:
        # The ids inline (whole numbers from our own rows, so safe to write in): building
        # a thousand parameters through the query builder took longer than the query.
        table = ProposalPhoto._meta.db_table
        photos = await connections.get("default").execute_query_dict(
            f'SELECT "proposal_id", "key" FROM "{table}" WHERE "approved" '
            f'AND "proposal_id" IN ({",".join(str(int(i)) for i in ids)}) ORDER BY "id"'
        )
        for photo in photos:
            keys.setdefault(int(photo["proposal_id"]), []).append(str(photo["key"]))
    return [_request(row, tuple(keys.get(int(row["id"]), ()))) for row in rows]  # type: ignore[call-overload]


def _request(row: dict[str, object], photo_keys: tuple[str, ...]) -> PublicRequest:
    values = {k: v for k, v in row.items() if k != "duplicate_of__reference"}
    return PublicRequest(
        **values,  # type: ignore[arg-type]
        merged_into=str(row.get("duplicate_of__reference") or ""),
        photo_keys=photo_keys,
    )


@dataclass(frozen=True, slots=True)
class PersonalDetails:
    """What only an admin's export holds: who wrote it, and what was written back."""

    author: int | None  # the resident's row id, never a platform id
    author_language: str
    hidden_reason: str
    comments: tuple[tuple[datetime, str, str], ...]  # (when, "resident" or the staff account, text)


async def personal_details() -> dict[int, PersonalDetails]:
    """Per proposal (hidden and withdrawn ones too), the personal part of an admin's export."""
    comments: dict[int, list[tuple[datetime, str, str]]] = {}
    for proposal_id, created_at, staff, text in (
        await ProposalComment.all()
        .order_by("created_at", "id")
        .values_list("proposal_id", "created_at", "staff", "text")
    ):
        comments.setdefault(int(proposal_id), []).append(
            (created_at, str(staff) or "resident", str(text))
        )
    rows = await Proposal.all().values_list(
        "id", "author_id", "author__language", "hidden_reason", "hidden_at"
    )
    return {
        int(pid): PersonalDetails(
            int(author) if author is not None else None,
            str(language or ""),
            str(reason) if hidden_at else "",
            tuple(comments.get(int(pid), ())),
        )
        for pid, author, language, reason, hidden_at in rows
    }


async def all_requests_with_personal_data() -> list[PublicRequest]:
    """Every proposal, hidden and withdrawn too, newest first: for an admin's export."""
    return await _with_photos(
        await _rows(Proposal.all().order_by("-created_at", "-id").values(*_FIELDS))
    )


async def listing(statuses: Sequence[str] = (), department: str = "") -> list[Proposal]:
    """For the operator's command line, hidden and withdrawn ones too: newest first."""
    query = Proposal.all()
    if statuses:
        query = query.filter(status__in=list(statuses))
    if department:
        query = query.filter(department=department)
    return list(await query.order_by("-created_at", "-id"))
