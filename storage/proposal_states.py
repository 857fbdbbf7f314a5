"""The statuses a proposal moves through, and which of them count as closed."""

from __future__ import annotations

RECEIVED = "received"
UNDER_REVIEW = "under_review"
PLANNED = "planned"
IN_PROGRESS = "in_progress"
ACCEPTED = "accepted"
PARTLY_ACCEPTED = "partly_accepted"
REJECTED = "rejected"
IMPLEMENTED = "implemented"
NOT_OURS = "not_ours"
DUPLICATE = "duplicate"
WITHDRAWN = "withdrawn"

# What staff may set, in the order a review moves through them.
STATUSES = (
    RECEIVED,
    UNDER_REVIEW,
    PLANNED,
    IN_PROGRESS,
    ACCEPTED,
    PARTLY_ACCEPTED,
    REJECTED,
    IMPLEMENTED,
    NOT_OURS,
)
# A status that decides something must say publicly how the proposal was taken into account.
NEEDS_EXPLANATION = frozenset({ACCEPTED, PARTLY_ACCEPTED, REJECTED, IMPLEMENTED, NOT_OURS})
# Nothing more is expected to happen: Open311's "closed".
CLOSED = frozenset({REJECTED, IMPLEMENTED, NOT_OURS, DUPLICATE, WITHDRAWN})
OPEN = [s for s in STATUSES if s not in CLOSED]
