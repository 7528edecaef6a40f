"""Bitbucket's query language (BBQL): the `q` and `sort` parameters of Cloud listings.

    q=(state = "OPEN" OR state = "MERGED") AND updated_on > 2015-11-01
    sort=-updated_on

A query is parsed into a typed tree (`parse`), checked against the fields a listing allows
(`check`, which also turns quoted datetimes into datetimes), and then either translated to
SQL (`storage/query.py`: listings kept in the database) or evaluated in memory (`matches`:
branches and tags, read from git). Nothing here knows SQL or HTTP.

The grammar, as Bitbucket documents it:

    query      := disjunction
    disjunction:= conjunction ("OR" conjunction)*
    conjunction:= primary ("AND" primary)*
    primary    := "(" disjunction ")" | path operator value
    path       := name ("." name)*
    operator   := "=" | "!=" | "~" | "!~" | ">" | ">=" | "<" | "<="
    value      := string | number | datetime | "true" | "false" | "null"

`AND`, `OR`, `true`, `false` and `null` are case-insensitive. Strings are double-quoted with
backslash escapes (`\\"`, `\\\\`, `\\/`, `\\n`, `\\t`, `\\r`, `\\uXXXX`); datetimes are ISO 8601
without quotes (`2015-11-01`, `2015-11-01T08:00:00`, `...+02:00`, `...Z`; no offset means
UTC). `~` and `!~` are case-insensitive "contains" and "does not contain", on text only.

Every error is a `QueryError` naming the problem and its position (1-based character),
which the Cloud surface answers with a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import TypeAlias

#: Longer queries and deeper nesting are refused: no listing needs them, and they bound the
#: work (and the recursion) a request can ask for.
MAX_QUERY_LENGTH = 2000
MAX_DEPTH = 16


class QueryError(ValueError):
    """A query that cannot be parsed or does not fit the listing; `position` is 1-based."""

    def __init__(self, problem: str, position: int | None = None) -> None:
        self.problem = problem
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{problem}{where}")


class Op(Enum):
    EQ = "="
    NE = "!="
    CONTAINS = "~"
    NOT_CONTAINS = "!~"
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="


ORDERING = frozenset({Op.GT, Op.GE, Op.LT, Op.LE})
TEXT_ONLY = frozenset({Op.CONTAINS, Op.NOT_CONTAINS})

Value: TypeAlias = str | int | float | bool | datetime | None


@dataclass(frozen=True)
class Comparison:
    """`path op value`; `position` is where the path starts (1-based)."""

    path: str
    op: Op
    value: Value
    position: int


@dataclass(frozen=True)
class And:
    parts: tuple[Query, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Query, ...]


Query: TypeAlias = Comparison | And | Or


@dataclass(frozen=True)
class Sort:
    path: str
    descending: bool = False


@dataclass(frozen=True)
class Criteria:
    """What a listing was asked for beyond its window: a checked query and a sort field."""

    query: Query | None = None
    sort: Sort | None = None


NO_CRITERIA = Criteria()


# -- lexing -------------------------------------------------------------------------------


class _Kind(Enum):
    NAME = "name"
    STRING = "string"
    NUMBER = "number"
    DATETIME = "datetime"
    OP = "operator"
    LPAREN = "("
    RPAREN = ")"
    DOT = "."
    END = "end of query"


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str
    value: Value
    position: int  # 1-based


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?(Z|[+-]\d{2}:?\d{2})?)?"
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_OPERATORS = ("!=", "!~", ">=", "<=", "=", "~", ">", "<")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r"}
_WORD_END = re.compile(r"[A-Za-z0-9_:.+-]")


def _datetime(match: re.Match[str], position: int) -> datetime:
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0),
            int(second or 0), int((fraction or "0").ljust(6, "0")),
        )
        if offset is None or offset == "Z":
            return moment.replace(tzinfo=UTC)
        aware = datetime.fromisoformat(moment.isoformat() + _colon_offset(offset))
        return aware.astimezone(UTC)
    except (ValueError, OverflowError):
        raise QueryError(f"Invalid date {match.group(0)!r}", position) from None


def _colon_offset(offset: str) -> str:
    return offset if ":" in offset else f"{offset[:3]}:{offset[3:]}"


def _string(text: str, start: int) -> tuple[str, int]:
    """The string literal opening at text[start] (a quote) and the index after it."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == '"':
            value = "".join(out)
            if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
                # No database stores these (PostgreSQL refuses NUL even in a comparison).
                raise QueryError("A string may not contain NUL or lone surrogates", start + 1)
            return value, i + 1
        if c == "\\":
            if i + 1 >= len(text):
                break
            e = text[i + 1]
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                i += 2
                continue
            if e == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", text[i + 2 : i + 6]):
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            raise QueryError(f"Invalid escape \\{e} in a string", i + 1)
        out.append(c)
        i += 1
    raise QueryError("Unterminated string", start + 1)


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        pos = i + 1
        if c in " \t\r\n":
            i += 1
            continue
        if c == "(":
            tokens.append(_Token(_Kind.LPAREN, c, None, pos))
            i += 1
        elif c == ")":
            tokens.append(_Token(_Kind.RPAREN, c, None, pos))
            i += 1
        elif c == ".":
            tokens.append(_Token(_Kind.DOT, c, None, pos))
            i += 1
        elif c == '"':
            string, i = _string(text, i)
            tokens.append(_Token(_Kind.STRING, text[pos - 1 : i], string, pos))
        elif c.isascii() and (c.isdigit() or (c == "-" and text[i + 1 : i + 2].isdigit())):
            date = _DATETIME.match(text, i) if c != "-" else None
            kind: _Kind
            value: Value
            if date is not None:
                end = date.end()
                kind, value = _Kind.DATETIME, _datetime(date, pos)
            else:
                number = _NUMBER.match(text, i)
                assert number is not None  # a digit, or "-" and a digit
                end = number.end()
                literal = number.group(0)
                parsed = float(literal) if any(ch in literal for ch in ".eE") else int(literal)
                if isinstance(parsed, float) and parsed in (float("inf"), float("-inf")):
                    raise QueryError(f"Number {literal[:40]!r} is too large", pos)
                if isinstance(parsed, int) and not -(2**63) <= parsed < 2**63:
                    # What a database integer holds (SQLite refuses larger ones outright).
                    raise QueryError(f"Number {literal[:40]!r} is too large", pos)
                kind, value = _Kind.NUMBER, parsed
            if end < n and _WORD_END.match(text, end):
                raise QueryError(f"Invalid value {text[i:end + 1]!r}", pos)
            tokens.append(_Token(kind, text[i:end], value, pos))
            i = end
        elif (name := _NAME.match(text, i)) is not None:
            tokens.append(_Token(_Kind.NAME, name.group(0), None, pos))
            i = name.end()
        else:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    tokens.append(_Token(_Kind.OP, op, None, pos))
                    i += len(op)
                    break
            else:
                raise QueryError(f"Unexpected character {c!r}", pos)
    tokens.append(_Token(_Kind.END, "", None, n + 1))
    return tokens


# -- parsing ------------------------------------------------------------------------------

_KEYWORDS = {"and", "or", "true", "false", "null"}


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.at = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.at]

    def _advance(self) -> _Token:
        token = self.tokens[self.at]
        if token.kind is not _Kind.END:
            self.at += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self.current
        return token.kind is _Kind.NAME and token.text.lower() == word

    def disjunction(self, depth: int) -> Query:
        parts = [self.conjunction(depth)]
        while self._keyword("or"):
            self._advance()
            parts.append(self.conjunction(depth))
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self, depth: int) -> Query:
        parts = [self.primary(depth)]
        while self._keyword("and"):
            self._advance()
            parts.append(self.primary(depth))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def primary(self, depth: int) -> Query:
        token = self.current
        if token.kind is _Kind.LPAREN:
            if depth >= MAX_DEPTH:
                raise QueryError(
                    f"Too many nested parentheses (at most {MAX_DEPTH})", token.position
                )
            self._advance()
            inner = self.disjunction(depth + 1)
            closing = self.current
            if closing.kind is not _Kind.RPAREN:
                raise QueryError(f"Expected ')' but found {_describe(closing)}", closing.position)
            self._advance()
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        start = self.current
        path = self.path()
        token = self.current
        if token.kind is not _Kind.OP:
            raise QueryError(
                f"Expected an operator after {path!r} but found {_describe(token)}",
                token.position,
            )
        self._advance()
        op = Op(token.text)
        return Comparison(path, op, self.value(op), start.position)

    def path(self) -> str:
        token = self.current
        if token.kind is not _Kind.NAME or token.text.lower() in _KEYWORDS:
            raise QueryError(f"Expected a field name but found {_describe(token)}", token.position)
        names = [self._advance().text]
        while self.current.kind is _Kind.DOT:
            self._advance()
            token = self.current
            if token.kind is not _Kind.NAME:
                raise QueryError(
                    f"Expected a field name after '.' but found {_describe(token)}",
                    token.position,
                )
            names.append(self._advance().text)
        return ".".join(names)

    def value(self, op: Op) -> Value:
        token = self.current
        if token.kind in (_Kind.STRING, _Kind.NUMBER, _Kind.DATETIME):
            self._advance()
            return token.value
        if token.kind is _Kind.NAME and token.text.lower() in ("true", "false", "null"):
            self._advance()
            return {"true": True, "false": False, "null": None}[token.text.lower()]
        raise QueryError(
            f"Expected a value after {op.value!r} but found {_describe(token)}", token.position
        )


def _describe(token: _Token) -> str:
    if token.kind is _Kind.END:
        return "the end of the query"
    return f"{token.text!r}"


def parse(text: str) -> Query:
    """The query tree of `text`, or QueryError."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"The query is longer than {MAX_QUERY_LENGTH} characters")
    if not text.strip():
        raise QueryError("The query is empty")
    parser = _Parser(_tokens(text))
    query = parser.disjunction(0)
    rest = parser.current
    if rest.kind is not _Kind.END:
        raise QueryError(f"Expected AND, OR or the end of the query but found {_describe(rest)}",
                         rest.position)
    return query


# -- fields of a listing ------------------------------------------------------------------


class FieldType(Enum):
    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATETIME = "datetime"


@dataclass(frozen=True)
class Field:
    type: FieldType
    nullable: bool = False
    sortable: bool = True


Fields: TypeAlias = Mapping[str, Field]

_TYPE_NAMES = {
    str: "a string", int: "a number", float: "a number", bool: "true or false",
    datetime: "a datetime",
}


def _value_name(value: Value) -> str:
    return "null" if value is None else _TYPE_NAMES[type(value)]


def _check_comparison(c: Comparison, fields: Fields) -> Comparison:
    field = fields.get(c.path)
    if field is None:
        raise QueryError(f'Field "{c.path}" does not support filtering', c.position)
    value = c.value
    if value is None:
        if c.op not in (Op.EQ, Op.NE):
            raise QueryError(f"null can only be compared with = or !=, not {c.op.value}",
                             c.position)
        return c
    if c.op in TEXT_ONLY and field.type is not FieldType.TEXT:
        raise QueryError(
            f'Operator {c.op.value} needs a text field; "{c.path}" is {field.type.value}',
            c.position,
        )
    if field.type is FieldType.TEXT:
        ok = isinstance(value, str)
    elif field.type is FieldType.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif field.type is FieldType.BOOLEAN:
        ok = isinstance(value, bool)
        if ok and c.op in ORDERING:
            raise QueryError(
                f'"{c.path}" is true or false: compare it with = or !=', c.position
            )
    else:
        if isinstance(value, str):
            match = _DATETIME.fullmatch(value.strip())
            if match is None:
                raise QueryError(f'"{c.path}" is a datetime: {value!r} is not one', c.position)
            return replace(c, value=_datetime(match, c.position))
        ok = isinstance(value, datetime)
    if not ok:
        raise QueryError(
            f'"{c.path}" is {field.type.value}: compare it with {_expected(field.type)}, '
            f"not {_value_name(value)}",
            c.position,
        )
    return c


def _expected(kind: FieldType) -> str:
    return {
        FieldType.TEXT: "a string",
        FieldType.NUMBER: "a number",
        FieldType.BOOLEAN: "true or false",
        FieldType.DATETIME: "a datetime",
    }[kind]


def check(query: Query, fields: Fields) -> Query:
    """`query` if every comparison fits `fields` (quoted datetimes turned into datetimes),
    else QueryError."""
    if isinstance(query, Comparison):
        return _check_comparison(query, fields)
    parts = tuple(check(part, fields) for part in query.parts)
    return And(parts) if isinstance(query, And) else Or(parts)


def parse_sort(text: str, fields: Fields) -> Sort:
    """`name` ascending or `-name` descending, on a sortable field of the listing."""
    raw = text.strip()
    descending = raw.startswith("-")
    path = raw[1:] if descending else raw
    field = fields.get(path)
    if field is None or not field.sortable:
        shown = path[:100]
        raise QueryError(f'Field "{shown}" does not support sorting')
    return Sort(path, descending)


def criteria(q: str | None, sort: str | None, fields: Fields) -> Criteria:
    """The checked query and sort of a request (either may be absent or empty)."""
    query = check(parse(q), fields) if q else None
    order = parse_sort(sort, fields) if sort else None
    return Criteria(query, order)


# -- evaluating in memory (lists that do not come from the database) ---------------------


def _compare(op: Op, have: Value, want: Value) -> bool:
    if want is None:
        return (have is None) == (op is Op.EQ)
    if op is Op.EQ:
        return have == want
    if op is Op.NE:
        return have != want
    if op in TEXT_ONLY:
        inside = have is not None and str(want).lower() in str(have).lower()
        return inside == (op is Op.CONTAINS)
    if have is None:
        return False
    a, b = have, want
    if op is Op.GT:
        return a > b  # type: ignore[operator]
    if op is Op.GE:
        return a >= b  # type: ignore[operator]
    if op is Op.LT:
        return a < b  # type: ignore[operator]
    return a <= b  # type: ignore[operator]


def matches(query: Query, value_of: Callable[[str], Value]) -> bool:
    """Does the item whose field values `value_of` gives match a checked query?"""
    if isinstance(query, Comparison):
        return _compare(query.op, value_of(query.path), query.value)
    if isinstance(query, And):
        return all(matches(part, value_of) for part in query.parts)
    return any(matches(part, value_of) for part in query.parts)
