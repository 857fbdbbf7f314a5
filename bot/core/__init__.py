"""The neutral vocabulary every package may import, and which imports nothing else of ours.

Messages in and out (``messages``), what a channel promises (``channel``),
translations (``i18n``), the configuration (``config``), quiet hours and
logging. ARCHITECTURE.md calls it the bottom floor; ``.importlinter`` keeps it so.
"""
