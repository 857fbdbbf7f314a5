"""Every dialog of the bot in one place, for the router."""

from __future__ import annotations

from dialogs import (
    announce,
    my_proposals,
    mydata,
    onboarding,
    poll_compose,
    poll_staff,
    proposal_reply,
    proposal_submit,
    review,
    settings,
)
from dialogs.engine import Registry

REGISTRY = Registry(
    (
        onboarding.dialog,
        settings.dialog,
        mydata.dialog,
        announce.dialog,
        proposal_submit.dialog,
        my_proposals.find_dialog,
        proposal_reply.dialog,
        review.dialog,
        poll_compose.dialog,
        poll_staff.dialog,
    )
)
