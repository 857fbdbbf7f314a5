"""Open proposals that look like a new one: close by on the map, or reading alike.

Offered to the resident *before* their proposal is created, so that a pothole
reported twenty times is one proposal with twenty supporters. Two ways to match:

- both have a place: the same category within ``similar_distance_metres``
  (a box query on the coordinates' index narrows it, the exact distance decides);
- by the words: open proposals of the same category and neighbourhood sharing
  word stems with the draft, read from an inverted index (``ProposalTerm``) so the
  lookup stays fast among tens of thousands of open proposals.

Stems are the first letters of each word, folded (case, Latvian diacritics,
Cyrillic to Latin letters), so inflected forms meet ("bedre", "bedres", "bedri";
"яма", "ямы") and a text in any of the three languages is matched with the
texts written in it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from tortoise.functions import Count

from bot.core.geo import box_around, distance_metres
from storage.models import Proposal, ProposalTerm
from storage.proposal_states import OPEN

STEM = 5  # letters of a word kept: enough to tell words apart, few enough to meet inflections
SHORTEST = 3  # shorter words ("un", "на", "the") say nothing of the subject
MOST_TERMS = 40  # of one text: the index stays small, a long text still matches
NEARBY_ROWS = 2000  # proposals in one box read at most: a city block holds far fewer
# Words too common in proposals to tell one from another, after folding.
STOP = frozenset(
    {
        "ludzu",
        "ludzu,",
        "paldi",
        "varet",
        "vajag",
        "nepie",
        "laba",
        "labdi",
        "sveik",
        "please",
        "there",
        "which",
        "would",
        "shoul",
        "could",
        "about",
        "thank",
        "hello",
        "pozha",
        "spasi",
        "zdrav",
        "nuzhn",
        "mozhn",
        "ochen",
        "kotor",
        "kogda",
        "esche",
        "this",
        "that",
        "with",
        "from",
        "have",
        "they",
        "been",
        "when",
        "what",
        "where",
        "kas",
        "lai",
        "par",
        "uz",
        "ir",
        "nav",
        "bet",
        "jau",
        "arī",
        "ari",
        "tas",
        "tur",
        "eto",
        "dlya",
        "kak",
        "chto",
        "ili",
        "tak",
        "uzhe",
        "vse",
        "est",
    }
)

_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "e",
            "zh",
            "z",
            "i",
            "i",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "h",
            "c",
            "ch",
            "sh",
            "sch",
            "",
            "y",
            "",
            "e",
            "yu",
            "ya",
        ],
        strict=True,
    )
)
_WORD = re.compile(r"[^\W\d_]+")


def _fold(word: str) -> str:
    word = "".join(_CYRILLIC.get(ch, ch) for ch in word.casefold())
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch)
    )


def terms(text: str) -> list[str]:
    """The distinct stems of a text, in the order they first appear."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text):
        folded = _fold(word)
        if len(folded) < SHORTEST:
            continue
        stem = folded[:STEM]
        if stem in STOP or folded in STOP:
            continue
        seen.setdefault(stem, None)
        if len(seen) >= MOST_TERMS:
            break
    return list(seen)


async def index(proposal: Proposal) -> None:
    """Put an open proposal's stems in the index (again, after it was reopened)."""
    await ProposalTerm.filter(proposal_id=proposal.id).delete()
    await ProposalTerm.bulk_create(
        [
            ProposalTerm(
                proposal_id=proposal.id,
                term=term,
                category=proposal.category,
                neighbourhood=proposal.neighbourhood,
            )
            for term in terms(proposal.text)
        ]
    )


async def drop(proposal_id: int) -> None:
    """A proposal that closed is offered no more: out of the index."""
    await ProposalTerm.filter(proposal_id=proposal_id).delete()


async def find(
    *,
    category: str,
    text: str,
    neighbourhood: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    distance: float = 150.0,
    limit: int = 3,
    exclude: Sequence[int] = (),
) -> list[Proposal]:
    """At most ``limit`` open, public proposals like the draft, the closest match first:
    those nearby, then those sharing the most stems (at least two, or all of a short
    draft's)."""
    found: dict[int, float] = {}
    if latitude is not None and longitude is not None:
        box = box_around(latitude, longitude, distance)
        # Only the box in SQL: with the category and status there too, SQLite's planner
        # picks the (status, category) index and reads every open proposal of the
        # category (25 ms among 50,000) instead of the few in the box. The rest is
        # checked here, on the few hundred rows a box holds at most.
        skip = set(exclude)
        nearby = await (
            Proposal.filter(
                hidden_at__isnull=True,
                latitude__gte=box.south,
                latitude__lte=box.north,
                longitude__gte=box.west,
                longitude__lte=box.east,
            )
            .limit(NEARBY_ROWS)
            .values_list("id", "latitude", "longitude", "category", "status", "duplicate_of_id")
        )
        for pid, lat, lon, kind, status, duplicate_of in nearby:
            if kind != category or status not in OPEN or duplicate_of is not None or pid in skip:
                continue
            metres = distance_metres(latitude, longitude, lat, lon)
            if metres <= distance:
                found[pid] = 1000.0 - metres / distance  # nearer first, all before words
    wanted = terms(text)
    if wanted and len(found) < limit:
        needed = min(2, len(wanted))
        rows = (
            await ProposalTerm.filter(
                term__in=wanted, category=category, neighbourhood=neighbourhood
            )
            .exclude(proposal_id__in=list(exclude) or [0])
            .group_by("proposal_id")
            .annotate(shared=Count("id"))
            .filter(shared__gte=needed)
            .order_by("-shared", "-proposal_id")
            .limit(limit * 4)
            .values_list("proposal_id", "shared")
        )
        for pid, shared in rows:
            found.setdefault(pid, shared / len(wanted))
    if not found:
        return []
    best = sorted(found, key=lambda pid: (-found[pid], -pid))[: limit * 2]
    rows_by_id = {
        row.id: row
        for row in await Proposal.filter(id__in=best, hidden_at__isnull=True, status__in=OPEN)
    }
    return [rows_by_id[pid] for pid in best if pid in rows_by_id][:limit]
