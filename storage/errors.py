"""Exceptions storage raises in domain terms, so callers need not know the ORM."""


class DuplicateEvent(Exception):
    """This platform event was handled before: a redelivery has no second effect."""


class ResidentGone(Exception):
    """The resident was deleted while we were handling their message."""
