"""full-text search index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

The index holds folded text (see worker/store/fts.py), so a query folded the same way finds "Қазақстан",
"Türkiye" as "turkiye", "Kırgızistan" as "kirgizistan" and a raw title's "Vаrkert" (Cyrillic а) as "varkert".

SQLite: FTS5 over article (title, text, outlet), external content, kept in sync by triggers that write
`nw_fold(column)` (the Python function `worker.store.db` registers on every connection). A later migration
that makes SQLite recreate the article table (batch mode: type change, dropped column) drops these triggers
with it and must create them again.

PostgreSQL: a stored generated tsvector column with a GIN index. The 'simple' configuration (no stemming, no
stop words) because articles mix Kazakh, Russian, Turkish, English…: a language's stemmer would mangle the
others. The folding is done by our own IMMUTABLE SQL function rather than the unaccent extension: it needs
no extension (nor the rights to create one), is immutable as a generated column requires, and maps exactly
what `fold` maps (case, NFKC, diacritics, ı ø đ ł ß æ œ). Punctuation becomes spaces before PostgreSQL's
parser sees the text, so it splits words where FTS5 does (it would keep "astana.gov.kz" or "-19" whole).
Titles, text and outlet get the weights A, D and C, with a gap between them so a phrase cannot run from
one into the next.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SQLITE_UPGRADE = (
    """CREATE VIRTUAL TABLE article_fts USING fts5(
        title, text, outlet, content='article', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER article_fts_insert AFTER INSERT ON article BEGIN
        INSERT INTO article_fts (rowid, title, text, outlet)
        VALUES (new.id, nw_fold(new.title), nw_fold(new.text), nw_fold(new.outlet));
    END""",
    """CREATE TRIGGER article_fts_delete AFTER DELETE ON article BEGIN
        INSERT INTO article_fts (article_fts, rowid, title, text, outlet)
        VALUES ('delete', old.id, nw_fold(old.title), nw_fold(old.text), nw_fold(old.outlet));
    END""",
    """CREATE TRIGGER article_fts_update AFTER UPDATE OF title, text, outlet ON article BEGIN
        INSERT INTO article_fts (article_fts, rowid, title, text, outlet)
        VALUES ('delete', old.id, nw_fold(old.title), nw_fold(old.text), nw_fold(old.outlet));
        INSERT INTO article_fts (rowid, title, text, outlet)
        VALUES (new.id, nw_fold(new.title), nw_fold(new.text), nw_fold(new.outlet));
    END""",
    # Not FTS5's 'rebuild': it would read the unfolded columns of article.
    """INSERT INTO article_fts (rowid, title, text, outlet)
        SELECT id, nw_fold(title), nw_fold(text), nw_fold(outlet) FROM article""",
)

_SQLITE_DOWNGRADE = (
    "DROP TRIGGER article_fts_update",
    "DROP TRIGGER article_fts_delete",
    "DROP TRIGGER article_fts_insert",
    "DROP TABLE article_fts",
)

# Characters that combine with the one before (canonical combining class > 0) in the scripts news comes in:
# what `fold` strips after NFD.
_PG_MARKS = (
    r"[\u0300-\u034e\u0350-\u036f\u0483-\u0487\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
    r"\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed"
    r"\u1ab0-\u1abd\u1dc0-\u1dff\u20d0-\u20dc\u20e1\u20e5-\u20f0\ufe20-\ufe2f]"
)
# What is not part of a word: ASCII and Latin-1 punctuation and symbols, general punctuation, currency,
# arrows to dingbats, CJK punctuation, emoji. (NFKC has already turned ª ² ¼ and full-width forms into
# letters and digits.)
_PG_SEPARATORS = (
    r"[\x01-\x2f\x3a-\x40\x5b-\x60\x7b-\xbf\u00d7\u00f7\u2000-\u206f\u20a0-\u20cf\u2190-\u2bff"
    r"\u3000-\u303f\U0001f000-\U0001faff]+"
)


# Look-alike letters, as worker.analysis.text maps them inside mixed-script words (copied, not imported: a
# migration does not change with the code; tests/test_search.py checks that both still fold alike).
_CYRILLIC_TO_LATIN = ("аеорсухіјѕԁԛԝһӏАВЕКМНОРСТХІЈЅҮԚԜ", "aeopcyxijsdqwhlABEKMHOPCTXIJSYQW")
_GREEK_TO_LATIN = ("οανικτρυΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "oavuktpuABEZHIKMNOPTYX")
_LATIN_TO_CYRILLIC = ("aeopcyxiABEKMHOPCTX", "аеорсухіАВЕКМНОРСТХ")
_LATIN_LETTERS = r"A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_SCRIPT_LETTERS = r"A-Za-z\u00c0-\u024f\u0370-\u04ff"


def _pg_upgrade(schema: str) -> tuple[str, ...]:
    # Function bodies name each other with the schema: they run from generated columns, whatever the
    # search_path of the session.
    s = f'"{schema}"'
    to_latin = (_CYRILLIC_TO_LATIN[0] + _GREEK_TO_LATIN[0], _CYRILLIC_TO_LATIN[1] + _GREEK_TO_LATIN[1])
    return (
        # One run of letters, mapped to its main script when it mixes scripts ("Vаrkert" → "Varkert");
        # ties go to Latin, then Cyrillic, as in worker.analysis.text.repair_mixed_script.
        f"""CREATE FUNCTION {s}.nw_repair_word(word text) RETURNS text
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
            SELECT CASE
                WHEN latin + cyrillic + greek = greatest(latin, cyrillic, greek) THEN word
                WHEN latin >= cyrillic AND latin >= greek
                    THEN translate(word, '{to_latin[0]}', '{to_latin[1]}')
                WHEN cyrillic >= greek
                    THEN translate(word, '{_LATIN_TO_CYRILLIC[0]}', '{_LATIN_TO_CYRILLIC[1]}')
                ELSE word
            END
            FROM (SELECT length(regexp_replace(word, '[^{_LATIN_LETTERS}]', '', 'g')) AS latin,
                         length(regexp_replace(word, '[^\u0400-\u04ff]', '', 'g')) AS cyrillic,
                         length(regexp_replace(word, '[^\u0370-\u03ff]', '', 'g')) AS greek) AS counts
            $$""",
        f"""CREATE FUNCTION {s}.nw_repair(value text) RETURNS text
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
            SELECT CASE WHEN value ~ '[\u0370-\u04ff]' AND value ~ '[A-Za-z\u00c0-\u024f]' THEN
                (SELECT string_agg({s}.nw_repair_word(part[1]), '' ORDER BY n)
                 FROM regexp_matches(value, '[{_SCRIPT_LETTERS}]+|[^{_SCRIPT_LETTERS}]+', 'g')
                      WITH ORDINALITY AS parts(part, n))
            ELSE value END
            $$""",
        # The per-character part of worker.analysis.text.fold: lower case, diacritics stripped after NFD
        # (but the Greek iota subscript folds to ι, as casefold has it), and the letters NFD does not
        # decompose. Enough for article.text, which is stored normalize()d.
        f"""CREATE FUNCTION {s}.nw_fold_chars(value text) RETURNS text
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
            SELECT replace(replace(replace(translate(
                regexp_replace(
                    translate(normalize(lower(value), NFD), E'\\u0345', 'ι'), '{_PG_MARKS}', '', 'g'),
                'ıøđłς', 'iodlσ'), 'ß', 'ss'), 'æ', 'ae'), 'œ', 'oe')
            $$""",
        # All of fold, for raw titles and outlets: NFKC, invisible characters out, look-alikes repaired.
        f"""CREATE FUNCTION {s}.nw_fold(value text) RETURNS text
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
            SELECT {s}.nw_fold_chars({s}.nw_repair(translate(normalize(value, NFKC),
                E'\\u00ad\\u200b\\u200c\\u200d\\u2060\\ufeff', '')))
            $$""",
        # Folded text → a tsvector whose words are its runs of letters and digits, as FTS5 splits them.
        f"""CREATE FUNCTION {s}.nw_search_words(folded text) RETURNS tsvector
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT to_tsvector('simple'::regconfig,
                regexp_replace(coalesce(folded, ''), '{_PG_SEPARATORS}', ' ', 'g'))
            $$""",
        # The gap lexeme '|' (no query can contain it) keeps a phrase from running from one field on.
        f"""CREATE FUNCTION {s}.nw_search_vector(title text, body text, outlet text) RETURNS tsvector
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT setweight({s}.nw_search_words({s}.nw_fold(title)), 'A')
                || '''|'':1'::tsvector
                || setweight({s}.nw_search_words({s}.nw_fold_chars(body)), 'D')
                || '''|'':1'::tsvector
                || setweight({s}.nw_search_words({s}.nw_fold(outlet)), 'C')
            $$""",
        f"""ALTER TABLE {s}.article ADD COLUMN search_vector tsvector
            GENERATED ALWAYS AS ({s}.nw_search_vector(title, text, outlet)) STORED""",
        f"CREATE INDEX ix_article_search_vector ON {s}.article USING gin (search_vector)",
    )


def upgrade() -> None:
    bind = op.get_bind()
    statements: tuple[str, ...]
    if bind.dialect.name == "sqlite":
        statements = _SQLITE_UPGRADE
    else:
        schema = bind.exec_driver_sql("SELECT current_schema()").scalar_one()
        statements = _pg_upgrade(schema)
    for statement in statements:
        bind.exec_driver_sql(statement)  # not op.execute: text() would take ":1" for a parameter


def downgrade() -> None:
    bind = op.get_bind()
    statements: tuple[str, ...]
    if bind.dialect.name == "sqlite":
        statements = _SQLITE_DOWNGRADE
    else:
        statements = (
            "DROP INDEX ix_article_search_vector",
            "ALTER TABLE article DROP COLUMN search_vector",
            "DROP FUNCTION nw_search_vector(text, text, text)",
            "DROP FUNCTION nw_search_words(text)",
            "DROP FUNCTION nw_fold(text)",
            "DROP FUNCTION nw_fold_chars(text)",
            "DROP FUNCTION nw_repair(text)",
            "DROP FUNCTION nw_repair_word(text)",
        )
    for statement in statements:
        bind.exec_driver_sql(statement)
