"""The query language: parsed into a tree, folded like the index, rendered safely for FTS5 and tsquery."""

from __future__ import annotations

import random
import sqlite3

import pytest

from worker.store.search_syntax import (
    MAX_TERMS,
    And,
    Not,
    Or,
    QuerySyntaxError,
    Term,
    highlight_terms,
    parse,
    to_fts5,
    to_tsquery,
    tokens,
)


def test_words_are_and_phrases_or_not_prefix_and_groups() -> None:
    assert parse("tokayev aktau") == parse("tokayev AND aktau") == And((Term(("tokayev",)), Term(("aktau",))))
    assert parse('"Prime Minister"') == Term(("prime", "minister"))
    assert parse("tokayev OR tokaev") == Or((Term(("tokayev",)), Term(("tokaev",))))
    assert parse("aktau -port") == parse("aktau NOT port") == And((Term(("aktau",)), Not(Term(("port",)))))
    assert parse("kazakh*") == Term(("kazakh",), prefix=True)
    assert parse('"prime min"*') == Term(("prime", "min"), prefix=True)
    assert parse("(a OR b) c") == And((Or((Term(("a",)), Term(("b",)))), Term(("c",))))


def test_not_binds_tighter_than_and_and_and_tighter_than_or() -> None:
    a, b, c = Term(("a",)), Term(("b",)), Term(("c",))
    assert parse("a b OR c") == Or((And((a, b)), c))
    assert parse("a OR b c") == Or((a, And((b, c))))
    assert parse("NOT a b") == And((Not(a), b))
    assert parse("a (b (c))") == And((a, b, c))  # nested groups flatten
    assert parse("NOT NOT a") == a


def test_words_are_folded_and_split_as_the_index_splits_them() -> None:
    assert parse("Қазақстан") == Term(("қазақстан",))
    assert parse("ҚАЗАҚСТАН") == Term(("қазақстан",))
    assert parse("Türkiye") == Term(("turkiye",))
    assert parse("Kırgızistan") == Term(("kirgizistan",))
    assert parse("Vаrkert") == Term(("varkert",))  # Cyrillic а in a Latin word
    assert parse("Straße") == Term(("strasse",))
    assert parse("covid-19") == Term(("covid", "19"))  # one word the index splits: a phrase of its parts
    assert parse("astana.gov.kz") == Term(("astana", "gov", "kz"))
    assert parse("Kazakistan'ın") == Term(("kazakistan", "in"))
    assert parse("and or not") == And((Term(("and",)), Term(("or",)), Term(("not",))))  # lower case: words
    assert tokens("Kassym-Jomart  TOKAYEV, 2025") == ["kassym", "jomart", "tokayev", "2025"]


def test_words_without_letters_or_digits_are_ignored() -> None:
    assert parse("tokayev — !!! aktau") == And((Term(("tokayev",)), Term(("aktau",))))
    assert parse("a - b") == And((Term(("a",)), Term(("b",))))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "no words to search for"),
        ("!!! ---", "no words to search for"),
        ("-visa", "only excludes words"),
        ("NOT visa NOT tax", "only excludes words"),
        ("a OR -b", "NOT cannot stand inside OR"),
        ('"prime minister', 'missing its closing "'),
        ("(a OR b", '"(" without a matching ")"'),
        ("a) b", '")" without a matching "("'),
        ("a AND", "AND needs something to search for on each side"),
        ("AND a", "AND needs something to search for on each side"),
        ("a AND AND b", "AND needs something to search for on each side"),
        ("a OR", "OR needs something to search for on each side"),
        ("OR a", "OR needs something to search for on each side"),
        ("a NOT", "NOT needs a word to exclude after it"),
        ("k*", "too short for a prefix"),
        ("(" * 20 + "a" + ")" * 20, "nested parentheses"),
        ("a " * (MAX_TERMS + 1), "at most"),
        ("a" * 1001, "longer than 1000 characters"),
    ],
)
def test_invalid_queries_say_why_in_one_line(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)
    assert message in str(caught.value)
    assert str(caught.value).startswith("invalid query: ") and "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_rendering_quotes_every_word_and_groups_every_operator() -> None:
    node = parse('(tokayev OR tokaev) "prime minister" kaz* -visa')
    fields = "{title text} : "
    included = (
        f'(({fields}"tokayev") OR ({fields}"tokaev")) AND ({fields}"prime minister") AND ({fields}"kaz"*)'
    )
    assert to_fts5(node) == f'({included}) NOT ({fields}"visa")'
    assert to_tsquery(node) == (
        "(('tokayev':AD | 'tokaev':AD) & ('prime':AD <-> 'minister':AD) & 'kaz':*AD & !'visa':AD)"
    )
    outlet = Term(("kazinform",), field="outlet")
    assert to_fts5(outlet) == '{outlet} : "kazinform"'
    assert to_tsquery(outlet) == "'kazinform':C"


def test_only_searched_words_are_highlighted() -> None:
    node = And((parse('tokayev "prime minister" -visa'), Term(("kazinform",), field="outlet")))
    assert highlight_terms(node) == [Term(("tokayev",)), Term(("prime", "minister"))]


def test_no_user_text_reaches_fts5_unquoted() -> None:
    """Whatever is typed, the rendered MATCH expression is valid FTS5 (or the query is refused)."""
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIRTUAL TABLE t USING fts5(title, text, outlet)")
    connection.execute("INSERT INTO t VALUES ('near and or', 'column : ^ x', 'y')")
    alphabet = "aZ ()\"*-:^{}+.,'\\NEAROTD&|!<>"
    rng = random.Random(4287)
    queries = ["title : x", "NEAR(a b)", "{title}: a", "^a", "a + b", "'; DROP TABLE t; --", "a:*", "\\"]
    queries += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(3000)]
    parsed = 0
    for query in queries:
        try:
            node = parse(query)
        except QuerySyntaxError:
            continue
        connection.execute("SELECT rowid FROM t WHERE t MATCH ?", (to_fts5(node),)).fetchall()
        parsed += 1
    assert parsed > 500  # enough of them reached SQLite
