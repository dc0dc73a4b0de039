"""What the full-text index sees of an article, and the names of its objects (migrations 0002 and 0003).

The index holds folded text (`worker.analysis.text.fold`), the form queries are folded to
(`worker.store.search_syntax`), so both sides agree on case, diacritics, Turkish dotless i, look-alike
letters in raw titles and the like — which the engines' own folding does not do the same way:

- SQLite: FTS5 table `article_fts` (title, text, outlet) with external content `article`; triggers on
  `article` write `nw_fold(column)` into it. `nw_fold` is `fold` itself, registered on every connection
  `worker.store.db.make_engine` opens. So a connection without it (the sqlite3 shell) cannot insert, update
  or delete articles; and FTS5's 'rebuild' must not be used, it would index the unfolded columns — reindex
  with 'delete-all' and INSERT … SELECT nw_fold(…) instead. An index `article_fts_window` on article (id,
  duplicate_of) serves the search window's join (`worker.store.search._ranked`).
- PostgreSQL: generated column `article.search_vector` (tsvector, GIN index `ix_article_search_vector`)
  computed by SQL functions that apply the same folding as `fold`, character for character (tested); it is
  not part of the models, so the ORM never reads or writes it.
"""

from __future__ import annotations

from typing import Any

from worker.analysis.text import fold

SQLITE_FOLD_FUNCTION = "nw_fold"
FTS_TABLE = "article_fts"
SQLITE_TRIGGERS = ("article_fts_insert", "article_fts_delete", "article_fts_update")
# article (id, duplicate_of): the search window's join reads a match's duplicate_of from here rather than from
# the wide article row (migration 0003).
SQLITE_WINDOW_INDEX = "article_fts_window"

PG_VECTOR_COLUMN = "search_vector"
PG_VECTOR_INDEX = "ix_article_search_vector"
PG_FUNCTIONS = (
    "nw_repair_word",
    "nw_repair",
    "nw_fold_chars",
    "nw_fold",
    "nw_search_words",
    "nw_search_vector",
)
# ts_rank_cd weights for labels {D, C, B, A}: text D, outlet C (matched only by the outlet filter, adds
# nothing), title A: a word in the title counts as much as four in the text.
PG_RANK_WEIGHTS = "{0.25,0,0,1}"


def _fold_or_null(value: str | None) -> str | None:
    return fold(value) if value is not None else None


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Make `nw_fold` available to the triggers of this SQLite connection."""
    dbapi_connection.create_function(SQLITE_FOLD_FUNCTION, 1, _fold_or_null, deterministic=True)


def is_search_object(name: str | None) -> bool:
    """Whether a reflected table, column or index belongs to the full-text index, not to the models:
    FTS5's table and its shadow tables on SQLite, the tsvector column and its index on PostgreSQL."""
    if name is None:
        return False
    return (
        name == FTS_TABLE or name.startswith(FTS_TABLE + "_") or name in (PG_VECTOR_COLUMN, PG_VECTOR_INDEX)
    )
