"""Persistence: Tortoise models, migrations and the domain queries.

The only package that imports Tortoise; the rest of the bot calls the
functions of its modules (``residents.set_language(...)``), never queries.
"""
