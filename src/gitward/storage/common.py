"""What every aggregate's queries share: paging windows and pages, and the storable-text check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")
_AnySelect = TypeVar("_AnySelect", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class Window:
    """Which slice of a listing to read: `offset` rows skipped, at most `limit` returned
    (None: all), and whether the total is wanted too (Cloud pages carry `size`)."""

    offset: int = 0
    limit: int | None = None
    count: bool = False


EVERYTHING = Window()


@dataclass(frozen=True)
class Page(Generic[T]):
    """One window of a listing. `has_more`: rows follow it; `total`: all rows, when counted."""

    items: Sequence[T]
    has_more: bool
    total: int | None = None

    @classmethod
    def of(cls, items: Sequence[T], window: Window) -> Page[T]:
        """A page of a list that is not in the database (branches read from git)."""
        end = None if window.limit is None else window.offset + window.limit
        chunk = items[window.offset : end]
        has_more = end is not None and end < len(items)
        return cls(chunk, has_more, len(items) if window.count else None)


EMPTY: Page[Any] = Page((), False, 0)


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching text that starts with `prefix` (escaped with backslash)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _windowed(statement: _AnySelect, window: Window) -> _AnySelect:
    if window.offset:
        statement = statement.offset(window.offset)
    if window.limit is not None:
        # One row past the window tells whether another page follows, without a count.
        statement = statement.limit(window.limit + 1)
    return statement


def _finish(session: Session, statement: _AnySelect, window: Window, rows: list[T]) -> Page[T]:
    has_more = window.limit is not None and len(rows) > window.limit
    items = rows[: window.limit] if has_more else rows
    total = None
    if window.count:
        if not has_more and (items or not window.offset):
            total = window.offset + len(items)  # the last page: no need to ask
        else:
            total = session.scalar(
                select(func.count()).select_from(statement.order_by(None).subquery())
            ) or 0
    return Page(items, has_more, total)


def scalars_page(session: Session, statement: Select[T], window: Window) -> Page[T]:
    """The window of a one-entity statement, paged in SQL (LIMIT/OFFSET, and a count only
    when one is wanted and the page itself does not tell it)."""
    rows = list(session.scalars(_windowed(statement, window)).unique())
    return _finish(session, statement, window, rows)


def rows_page(
    session: Session, statement: Select[*tuple[Any, ...]], window: Window
) -> Page[Any]:
    """As scalars_page, for a statement of several columns (rows, which unpack as tuples)."""
    rows = list(session.execute(_windowed(statement, window)))
    return _finish(session, statement, window, rows)


def contains(column: Any, text: str) -> ColumnElement[bool]:
    """`column` contains `text`, in any case (LIKE's wildcards in `text` match themselves)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    clause: ColumnElement[bool] = func.lower(column).like(f"%{escaped}%", escape="\\")
    return clause


def storable(text: str) -> bool:
    """Could a row hold this name? PostgreSQL refuses NUL in text (even in a comparison)."""
    return "\x00" not in text
