"""The search query language, parsed into a small tree and rendered for each store's full-text engine.

One syntax on both stores (documented in the README):

    tokayev aktau          both words (AND is implied)
    "prime minister"       a phrase: the words next to each other, in this order
    tokayev OR tokaev      either word
    NOT visa, -visa        without the word
    kazakh*                any word starting with "kazakh"
    (a OR b) c             parentheses group; NOT binds tighter than AND, AND tighter than OR

Words are folded exactly as the index folds article text (`worker.analysis.text.fold`: case, diacritics,
Turkish dotless i, look-alike letters), then split where the index splits words, so "Қазақстан", "Türkiye"
and "Varkert" find what they should. A word the index would split ("covid-19", "astana.gov.kz") becomes a
phrase of its parts. Operators are recognised in capitals only: "and", "or" and "not" are ordinary words.

User text never reaches MATCH or tsquery as such: it is rendered from the tree, every word quoted, so a
query cannot be a syntax error or an injection on either store. A query the tree cannot express — only
excluded words, NOT inside OR — is a `QuerySyntaxError` (a ValueError) with a one-line message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeAlias

from worker.analysis.text import fold

MAX_QUERY_CHARS = 1000
MAX_TERMS = 64
MAX_DEPTH = 16
# A shorter prefix matches a large share of the vocabulary and would read most of the index.
MIN_PREFIX_CHARS = 2
OPERATORS = ("AND", "OR", "NOT")

# What the index treats as one word: runs of letters and digits (FTS5 unicode61 and the PostgreSQL
# search text of migration 0002 split everything else).
_TOKEN = re.compile(r"[^\W_]+")
_SPECIAL = '()"'


class QuerySyntaxError(ValueError):
    """A query that cannot be searched; the message is one line meant for the user."""


@dataclass(frozen=True)
class Term:
    """One word (one token) or a phrase (several), folded; `prefix` applies to the last token.

    `field` names the one indexed field the term is looked for in ("outlet" for the outlet filter); None
    means the fields people search: title and text.
    """

    tokens: tuple[str, ...]
    prefix: bool = False
    field: str | None = None


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node: TypeAlias = Term | And | Or | Not


def tokens(text: str) -> list[str]:
    """The index's words of `text`: folded, split on everything but letters and digits."""
    return _TOKEN.findall(fold(text))


# --- lexing ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lexeme:
    kind: str  # "word", "phrase", "(", ")", "-", or an operator
    text: str = ""
    prefix: bool = False


def _lex(query: str) -> list[_Lexeme]:
    out: list[_Lexeme] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append(_Lexeme(ch))
            i += 1
        elif ch == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise QuerySyntaxError('invalid query: a phrase is missing its closing "')
            phrase = query[i + 1 : end]
            i = end + 1
            prefix = query.startswith("*", i)
            while query.startswith("*", i):
                i += 1
            out.append(_Lexeme("phrase", phrase, prefix))
        elif ch == "-" and i + 1 < n and (query[i + 1] in '("' or not _is_break(query[i + 1])):
            out.append(_Lexeme("-"))
            i += 1
        else:
            start = i
            while i < n and not _is_break(query[i]):
                i += 1
            word = query[start:i]
            if word in OPERATORS:
                out.append(_Lexeme(word))
            else:
                stem = word.rstrip("*")
                out.append(_Lexeme("word", stem, prefix=stem != word))
    return out


def _is_break(ch: str) -> bool:
    return ch.isspace() or ch in '()"'


# --- parsing ---------------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the lexemes: or := and (OR and)*; and := unary (AND? unary)*;
    unary := NOT unary | - unary | ( or ) | word | phrase. Words without letters or digits vanish."""

    def __init__(self, lexemes: list[_Lexeme]) -> None:
        self.lexemes = lexemes
        self.pos = 0

    def peek(self) -> _Lexeme | None:
        return self.lexemes[self.pos] if self.pos < len(self.lexemes) else None

    def take(self) -> _Lexeme:
        lexeme = self.lexemes[self.pos]
        self.pos += 1
        return lexeme

    def parse(self) -> Node | None:
        node = self.or_expr(0)
        if self.peek() is not None:  # only a ")" stops or_expr early
            raise QuerySyntaxError('invalid query: ")" without a matching "("')
        return node

    def or_expr(self, depth: int) -> Node | None:
        parts = [self.and_expr(depth)]
        while (lexeme := self.peek()) is not None and lexeme.kind == "OR":
            self.take()
            parts.append(self.and_expr(depth))
        if len(parts) == 1:
            return parts[0]
        if any(part is None for part in parts):
            raise QuerySyntaxError("invalid query: OR needs something to search for on each side")
        return Or(tuple(part for part in parts if part is not None))

    def and_expr(self, depth: int) -> Node | None:
        parts: list[Node] = []
        while (lexeme := self.peek()) is not None and lexeme.kind not in (")", "OR"):
            if lexeme.kind == "AND":
                self.take()
                following = self.peek()
                if not parts or following is None or following.kind in (")", "OR", "AND"):
                    raise QuerySyntaxError("invalid query: AND needs something to search for on each side")
                continue
            node = self.unary(depth)
            if node is not None:
                parts.append(node)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self, depth: int) -> Node | None:
        lexeme = self.take()
        if lexeme.kind in ("NOT", "-"):
            following = self.peek()
            if following is None or following.kind in (")", "OR", "AND"):
                raise QuerySyntaxError(f"invalid query: {lexeme.kind} needs a word to exclude after it")
            child = self.unary(depth)
            return Not(child) if child is not None else None
        if lexeme.kind == "(":
            if depth >= MAX_DEPTH:
                raise QuerySyntaxError(f"invalid query: more than {MAX_DEPTH} nested parentheses")
            node = self.or_expr(depth + 1)
            closing = self.peek()
            if closing is None:
                raise QuerySyntaxError('invalid query: "(" without a matching ")"')
            self.take()
            return node
        if lexeme.kind == ")":
            raise QuerySyntaxError('invalid query: ")" without a matching "("')
        words = tokens(lexeme.text)
        if not words:
            return None
        if lexeme.prefix and len(words[-1]) < MIN_PREFIX_CHARS:
            raise QuerySyntaxError(
                f'invalid query: "{lexeme.text}*" is too short for a prefix '
                f"(at least {MIN_PREFIX_CHARS} letters before *)"
            )
        return Term(tuple(words), lexeme.prefix)


# --- checking --------------------------------------------------------------------------------------------


def parse(query: str) -> Node:
    """The tree of a user query, simplified and checked. Raises QuerySyntaxError (a ValueError)."""
    if len(query) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(f"invalid query: longer than {MAX_QUERY_CHARS} characters")
    node = _Parser(_lex(query)).parse()
    if node is None:
        raise QuerySyntaxError("invalid query: no words to search for")
    node = _simplify(node)
    if isinstance(node, Not):
        raise QuerySyntaxError("invalid query: it only excludes words; add a word to search for")
    count = len(_terms(node))
    if count > MAX_TERMS:
        raise QuerySyntaxError(f"invalid query: {count} words, at most {MAX_TERMS}")
    return node


def _simplify(node: Node) -> Node:
    """Flatten nested AND/OR, drop double negation, and reject what neither store can search:
    an AND of exclusions only, and an exclusion inside OR (FTS5's NOT is binary: "a NOT b")."""
    if isinstance(node, Term):
        return node
    if isinstance(node, Not):
        child = _simplify(node.child)
        return child.child if isinstance(child, Not) else Not(child)
    children: list[Node] = []
    for child in map(_simplify, node.children):
        if type(child) is type(node):
            children.extend(child.children)
        else:
            children.append(child)
    if len(children) == 1:
        return children[0]
    if isinstance(node, Or):
        if any(isinstance(child, Not) for child in children):
            raise QuerySyntaxError("invalid query: NOT cannot stand inside OR; write (a OR b) NOT c")
        return Or(tuple(children))
    if all(isinstance(child, Not) for child in children):
        raise QuerySyntaxError("invalid query: it only excludes words; add a word to search for")
    return And(tuple(children))


def _terms(node: Node, positive_only: bool = False) -> list[Term]:
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return [] if positive_only else _terms(node.child)
    return [term for child in node.children for term in _terms(child, positive_only)]


def highlight_terms(node: Node) -> list[Term]:
    """The terms a snippet should highlight: the searched-for ones (not excluded, not field filters)."""
    return [term for term in _terms(node, positive_only=True) if term.field is None]


def matches(node: Node, words: Sequence[str], field: str) -> bool:
    """Whether `words` (the `tokens` of one field's text) satisfy `node` as the index would, its terms
    for other fields counted as satisfied."""
    if isinstance(node, Term):
        if node.field not in (None, field):
            return True
        size, head, last = len(node.tokens), list(node.tokens[:-1]), node.tokens[-1]
        for start in range(len(words) - size + 1):
            end = words[start + size - 1]
            if list(words[start : start + size - 1]) == head and (
                end == last or (node.prefix and end.startswith(last))
            ):
                return True
        return False
    if isinstance(node, Not):
        return not matches(node.child, words, field)
    if isinstance(node, And):
        return all(matches(child, words, field) for child in node.children)
    return any(matches(child, words, field) for child in node.children)


def in_field(node: Node, field: str) -> Node:
    """`node` with every searched term (not the field filters) looked for in `field` only."""
    if isinstance(node, Term):
        return replace(node, field=field) if node.field is None else node
    if isinstance(node, Not):
        return Not(in_field(node.child, field))
    children = tuple(in_field(child, field) for child in node.children)
    return And(children) if isinstance(node, And) else Or(children)


def with_filter(node: Node | None, term: Term) -> Node:
    """`node` AND `term` (a field filter such as the outlet)."""
    return term if node is None else And((*node.children, term) if isinstance(node, And) else (node, term))


# --- rendering -------------------------------------------------------------------------------------------

SEARCHED_FIELDS = ("title", "text")
# Field → the weight label of PostgreSQL's search vector (migration 0002): title A, outlet C, text D.
PG_FIELD_WEIGHTS = {"title": "A", "text": "D", "outlet": "C"}


def _fields(term: Term) -> tuple[str, ...]:
    return (term.field,) if term.field else SEARCHED_FIELDS


def to_fts5(node: Node) -> str:
    """An FTS5 MATCH expression: every token a quoted string, every group parenthesised."""
    if isinstance(node, Term):
        phrase = '"' + " ".join(token.replace('"', '""') for token in node.tokens) + '"'
        phrase += "*" if node.prefix else ""
        return "{" + " ".join(_fields(node)) + "} : " + phrase
    if isinstance(node, Or):
        return " OR ".join(f"({to_fts5(child)})" for child in node.children)
    if isinstance(node, Not):  # _simplify leaves NOT only as a child of AND
        raise ValueError("a NOT must be rendered by its AND")
    included = [child for child in node.children if not isinstance(child, Not)]
    rendered = " AND ".join(f"({to_fts5(child)})" for child in included)
    for child in node.children:
        if isinstance(child, Not):
            rendered = f"({rendered}) NOT ({to_fts5(child.child)})"
    return rendered


def _tsquery_lexeme(token: str, label: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "':" + label


def to_tsquery(node: Node) -> str:
    """PostgreSQL tsquery text (cast with ::tsquery, no dictionary applied): quoted lexemes labelled with
    their fields' weights, <-> phrases."""
    if isinstance(node, Term):
        weight = "".join(PG_FIELD_WEIGHTS[name] for name in _fields(node))
        lexemes = [_tsquery_lexeme(token, weight) for token in node.tokens[:-1]]
        lexemes.append(_tsquery_lexeme(node.tokens[-1], ("*" if node.prefix else "") + weight))
        return lexemes[0] if len(lexemes) == 1 else "(" + " <-> ".join(lexemes) + ")"
    if isinstance(node, Not):
        return f"!{to_tsquery(node.child)}"
    operator = " | " if isinstance(node, Or) else " & "
    return "(" + operator.join(to_tsquery(child) for child in node.children) + ")"
