"""A small OData `$filter` parser and evaluator for the simulator.

It covers the filter forms Microsoft documents for the endpoints the simulator serves:
comparisons (`eq ne gt ge lt le`), `startswith(prop,'x')`, `endswith(prop,'x')`, `and`, `or`,
`not`, parentheses, and lambda `any` over a collection (`signInEventTypes/any(t: t eq 'x')`).
Property paths use `/` (`status/errorCode`). String comparison is case-insensitive, as it is for
directory objects, unless the endpoint's row asks for exact comparison (`case_sensitive`: the
sign-in log, whose case handling Microsoft does not document); date-time literals are compared
as instants.

Each clause records the property and operator it uses, so the endpoint table can reject
clauses Microsoft does not document (see `query_options.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]

_TOKEN_RE = re.compile(
    r"""
    \s*(?:
      (?P<string>'(?:[^']|'')*')
     |(?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)(?![\w-])
     |(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?![\w-])
     |(?P<number>-?\d+(?:\.\d+)?)(?![\w-])
     |(?P<punct>[(),:])
     |(?P<name>[A-Za-z_@][\w./@-]*)
    )""",
    re.VERBOSE,
)

COMPARISON_OPERATORS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
FUNCTIONS = frozenset({"startswith", "endswith"})


class FilterError(ValueError):
    """The filter is malformed (Graph: 400 BadRequest, 'Invalid filter clause')."""


@dataclass(frozen=True)
class Clause:
    """One property/operator pair the filter uses, e.g. ('createdDateTime', 'ge')."""

    path: str
    operator: str


@dataclass(frozen=True)
class Filter:
    text: str
    predicate: Predicate
    clauses: tuple[Clause, ...]

    def __call__(self, record: Record) -> bool:
        return self.predicate(record)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN_RE.match(text, position)
        if not match or match.end() == position:
            raise FilterError(f"Invalid filter clause: unexpected text at position {position}")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    return tokens


def _literal(token: _Token) -> Any:
    if token.kind == "string":
        return token.text[1:-1].replace("''", "'")
    if token.kind == "datetime":
        return _parse_datetime(token.text)
    if token.kind == "guid":
        return token.text
    if token.kind == "number":
        return float(token.text) if "." in token.text else int(token.text)
    if token.kind == "name" and token.text in ("true", "false"):
        return token.text == "true"
    if token.kind == "name" and token.text == "null":
        return None
    raise FilterError(f"Invalid filter clause: expected a literal, got {token.text!r}")


def _parse_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def resolve(record: Any, path: str) -> Any:
    """The value at a `/`-separated property path, or None when any step is missing."""
    value = record
    for step in path.split("/"):
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def _compare(left: Any, operator: str, right: Any, case_sensitive: bool = False) -> bool:
    if isinstance(right, datetime) and isinstance(left, str):
        try:
            left = _parse_datetime(left)
        except ValueError:
            return False
    if isinstance(left, str) and isinstance(right, str) and not case_sensitive:
        left, right = left.lower(), right.lower()
    if operator == "eq":
        return bool(left == right)
    if operator == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if operator == "gt":
            return bool(left > right)
        if operator == "ge":
            return bool(left >= right)
        if operator == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


class _Parser:
    def __init__(self, text: str, case_sensitive: bool = False) -> None:
        self.tokens = _tokenize(text)
        self.position = 0
        self.clauses: list[Clause] = []
        self.case_sensitive = case_sensitive

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise FilterError("Invalid filter clause: unexpected end of expression")
        self.position += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text.lower() != text:
            raise FilterError(f"Invalid filter clause: expected {text!r}, got {token.text!r}")

    def at_keyword(self, keyword: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "name" and token.text.lower() == keyword

    def parse(self) -> Predicate:
        predicate = self.or_expression()
        if self.peek() is not None:
            raise FilterError(f"Invalid filter clause: unexpected {self.take().text!r}")
        return predicate

    def or_expression(self) -> Predicate:
        terms = [self.and_expression()]
        while self.at_keyword("or"):
            self.take()
            terms.append(self.and_expression())
        if len(terms) == 1:
            return terms[0]
        return lambda record: any(term(record) for term in terms)

    def and_expression(self) -> Predicate:
        terms = [self.unary()]
        while self.at_keyword("and"):
            self.take()
            terms.append(self.unary())
        if len(terms) == 1:
            return terms[0]
        return lambda record: all(term(record) for term in terms)

    def unary(self) -> Predicate:
        if self.at_keyword("not"):
            self.take()
            inner = self.unary()
            self.clauses.append(Clause("*", "not"))
            return lambda record: not inner(record)
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.or_expression()
            self.expect(")")
            return inner
        return self.primary()

    def primary(self) -> Predicate:
        token = self.take()
        if token.kind != "name":
            raise FilterError(f"Invalid filter clause: expected a property, got {token.text!r}")
        name = token.text
        following = self.peek()
        opens_call = following is not None and following.text == "("
        if opens_call and name.lower() in FUNCTIONS:
            return self.function(name.lower())
        if opens_call and name.lower().endswith("/any"):
            return self.any_lambda(name[: -len("/any")])
        operator_token = self.take()
        operator = operator_token.text.lower()
        if operator not in COMPARISON_OPERATORS:
            raise FilterError(f"Invalid filter clause: unknown operator {operator_token.text!r}")
        value = _literal(self.take())
        self.clauses.append(Clause(name, operator))
        exact = self.case_sensitive
        return lambda record: _compare(resolve(record, name), operator, value, exact)

    def function(self, function: str) -> Predicate:
        self.expect("(")
        path_token = self.take()
        if path_token.kind != "name":
            raise FilterError(f"Invalid filter clause: {function} needs a property first")
        self.expect(",")
        value = _literal(self.take())
        self.expect(")")
        if not isinstance(value, str):
            raise FilterError(f"Invalid filter clause: {function} needs a string")
        path = path_token.text
        self.clauses.append(Clause(path, function))
        exact = self.case_sensitive
        needle = value if exact else value.lower()

        def text_of(record: Record) -> str:
            found = str(resolve(record, path) or "")
            return found if exact else found.lower()

        if function == "startswith":
            return lambda record: text_of(record).startswith(needle)
        return lambda record: text_of(record).endswith(needle)

    def any_lambda(self, path: str) -> Predicate:
        self.expect("(")
        variable = self.take()
        if variable.kind != "name":
            raise FilterError("Invalid filter clause: any() needs a range variable")
        self.expect(":")
        # The body: comparisons of the range variable joined by `or` / `and` (`and` binding
        # tighter), e.g. any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser').
        alternatives: list[list[tuple[str, Any]]] = [[self.range_comparison(variable.text)]]
        while self.at_keyword("or") or self.at_keyword("and"):
            keyword = self.take().text.lower()
            comparison = self.range_comparison(variable.text)
            if keyword == "or":
                alternatives.append([comparison])
            else:
                alternatives[-1].append(comparison)
        self.expect(")")
        self.clauses.append(Clause(path, "any"))

        exact = self.case_sensitive

        def matches(item: Any) -> bool:
            return any(all(_compare(item, op, value, exact) for op, value in terms) for terms in alternatives)

        def predicate(record: Record) -> bool:
            items = resolve(record, path)
            return isinstance(items, list) and any(matches(item) for item in items)

        return predicate

    def range_comparison(self, variable: str) -> tuple[str, Any]:
        subject = self.take()
        if subject.text != variable:
            raise FilterError("Invalid filter clause: any() compares its range variable")
        operator = self.take().text.lower()
        if operator not in COMPARISON_OPERATORS:
            raise FilterError(f"Invalid filter clause: unknown operator {operator!r}")
        return operator, _literal(self.take())


def parse_filter(text: str, case_sensitive: bool = False) -> Filter:
    """The filter; `case_sensitive` makes string comparisons exact (the endpoint's row decides)."""
    parser = _Parser(text, case_sensitive)
    predicate = parser.parse()
    return Filter(text=text, predicate=predicate, clauses=tuple(parser.clauses))
