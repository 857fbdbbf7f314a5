"""How proposals are named to residents and staff: statuses, categories, departments,
dates, and the one-line summary every list shows. One place, so a status reads the
same in a push, in "My proposals" and in the review queue."""

from __future__ import annotations

from bot.core.config import Config
from bot.core.i18n import N_, Translator, localized
from storage import proposal_states as states
from storage.models import Proposal

STATUS_NAMES = {
    states.RECEIVED: N_("received"),
    states.UNDER_REVIEW: N_("under review"),
    states.PLANNED: N_("planned"),
    states.IN_PROGRESS: N_("in progress"),
    states.ACCEPTED: N_("accepted"),
    states.PARTLY_ACCEPTED: N_("partly accepted"),
    states.REJECTED: N_("rejected"),
    states.IMPLEMENTED: N_("implemented"),
    states.NOT_OURS: N_("passed to another body"),
    states.DUPLICATE: N_("merged into another proposal"),
    states.WITHDRAWN: N_("withdrawn"),
}


def status_name(tr: Translator, status: str) -> str:
    """The status in words ("planned"); an unknown one (a newer version's) as it is."""
    message = STATUS_NAMES.get(status)
    return tr.gettext(message) if message else status


def category_name(config: Config, key: str, language: str) -> str:
    category = config.proposals.category(key)
    return category.name(language) if category else key


def department_name(config: Config, key: str, language: str) -> str:
    department = config.proposals.department(key)
    return department.name(language) if department else key


def neighbourhood_name(config: Config, key: str, language: str) -> str:
    hood = next((n for n in config.municipality.neighbourhoods if n.id == key), None)
    return localized(dict(hood.names), language) if hood else key


SNIPPET = 60  # characters of a proposal's text in a one-line summary


def snippet(text: str, length: int = SNIPPET) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"


def summary_line(tr: Translator, config: Config, proposal: Proposal) -> str:
    """ "P-2026-0042 · Roads, pavements · planned: A deep pothole by the school…"."""
    return tr.gettext(
        "{reference} · {category} · {status}: {text}",
        reference=proposal.reference,
        category=category_name(config, proposal.category, tr.language),
        status=status_name(tr, proposal.status),
        text=snippet(proposal.text),
    )
