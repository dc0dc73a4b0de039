"""One exception base for everything Newswatch raises on purpose.

Faces (CLI, daemon, API) catch `NewswatchError` and print its message as one line; anything else is a bug
and may show a traceback.
"""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type name when empty), for logs and feed errors."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class NewswatchError(Exception):
    """Base of all expected errors: the message is meant for the user, one line."""


class ConfigError(NewswatchError):
    """The configuration is wrong; `problems` lists one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class FetchError(NewswatchError):
    """A feed could not be fetched; the message is recorded on the feed as its last error."""


class ParseError(NewswatchError):
    """The fetched body is not a feed we can read."""


class StoreError(NewswatchError):
    """The database cannot be reached or is not usable."""
