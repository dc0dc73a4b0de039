"""Newswatch: polls news feeds, stores every article once, finds duplicates, tags topics, alerts."""

__version__ = "0.1.0"
USER_AGENT = f"Newswatch/{__version__} (+https://github.com/newswatch/newswatch)"
