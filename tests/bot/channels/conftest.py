"""The Messenger fixtures for every channel test here (``messenger_helpers``)."""

from tests.bot.channels.messenger_helpers import graph, start_page

__all__ = ["graph", "start_page"]
