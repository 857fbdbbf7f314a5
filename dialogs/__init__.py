"""The conversations, written once for every channel.

A dialog never imports a platform, aiohttp or Tortoise: it reads and writes
through ``storage`` functions and answers with neutral ``Reply`` objects.
"""
