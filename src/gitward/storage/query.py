"""BBQL (domain/bbql.py) as SQL: a checked query becomes a WHERE clause and a sort an ORDER
BY, over the columns a listing maps its fields to, so that filtering, counting and paging
all happen in the database.

Semantics, the same on SQLite and PostgreSQL:
- `=`, `!=`, `>`, `>=`, `<`, `<=` compare as the column's type (text is compared exactly,
  case included); datetimes are bound through the column's type (UTC).
- `~` / `!~`: case-insensitive "contains" / "does not contain" (LIKE on lower-cased text,
  with `%`, `_` and the escape character escaped).
- `= null` / `!= null`: IS NULL / IS NOT NULL. On a nullable column `!=` and `!~` also match
  rows where it is NULL (a repository without a main branch is not on branch "main").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, and_, false, literal, not_, or_, true
from sqlalchemy import func as sql
from sqlalchemy.orm import InstrumentedAttribute

from gitward.domain.bbql import And, Comparison, Criteria, Field, Fields, FieldType, Op, Query
from gitward.storage.models import (
    Project,
    Repository,
    ResourceAccessToken,
    User,
    Workspace,
    WorkspaceMember,
)

#: A listing's fields as SQL: the column (or expression) of each BBQL path.
Columns = Mapping[str, ColumnElement[Any]]


def _comparison(c: Comparison, column: ColumnElement[Any], nullable: bool) -> ColumnElement[bool]:
    value = c.value
    if value is None:
        return column.is_(None) if c.op is Op.EQ else column.is_not(None)
    clause: ColumnElement[bool]
    if c.op in (Op.CONTAINS, Op.NOT_CONTAINS):
        inside = sql.lower(column).contains(str(value).lower(), autoescape=True)
        if c.op is Op.CONTAINS:
            return inside
        clause = not_(inside)
    elif c.op is Op.EQ:
        return column == value
    elif c.op is Op.NE:
        clause = column != value
    elif c.op is Op.GT:
        return column > value
    elif c.op is Op.GE:
        return column >= value
    elif c.op is Op.LT:
        return column < value
    else:
        return column <= value
    return or_(column.is_(None), clause) if nullable else clause


def where(query: Query, columns: Columns, fields: Fields) -> ColumnElement[bool]:
    """The WHERE clause of a query that `bbql.check` accepted against `fields`."""
    if isinstance(query, Comparison):
        return _comparison(query, columns[query.path], fields[query.path].nullable)
    parts = [where(part, columns, fields) for part in query.parts]
    if not parts:
        return true() if isinstance(query, And) else false()
    return and_(*parts) if isinstance(query, And) else or_(*parts)


@dataclass(frozen=True)
class Listing:
    """The BBQL fields of one listing (what `q` and `sort` may name, and their types) and the
    SQL each of them reads."""

    fields: Fields
    columns: Columns

    def where(self, criteria: Criteria) -> ColumnElement[bool] | None:
        """The WHERE clause of `criteria`'s query, or None when it has none."""
        return None if criteria.query is None else where(criteria.query, self.columns, self.fields)

    def order_by(
        self, criteria: Criteria, default: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]]
    ) -> list[ColumnElement[Any] | InstrumentedAttribute[Any]]:
        """ORDER BY `criteria`'s sort, then `default` (which ends with a unique column, so
        that pages never overlap). NULLs come last either way, on both databases."""
        sort = criteria.sort
        if sort is None:
            return list(default)
        column = self.columns[sort.path]
        first = column.desc() if sort.descending else column.asc()
        if self.fields[sort.path].nullable:
            return [column.is_(None).asc(), first, *default]
        return [first, *default]


def _listing(spec: Mapping[str, tuple[ColumnElement[Any], Field]]) -> Listing:
    return Listing(
        {path: field for path, (_, field) in spec.items()},
        {path: column for path, (column, _) in spec.items()},
    )


def _braced(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A uuid as the API shows it: `{...}`."""
    return literal("{", String) + column + literal("}", String)


_TEXT = Field(FieldType.TEXT)
_NULLABLE_TEXT = Field(FieldType.TEXT, nullable=True)
_BOOLEAN = Field(FieldType.BOOLEAN)
_NUMBER = Field(FieldType.NUMBER)
_DATETIME = Field(FieldType.DATETIME)
_NULLABLE_DATETIME = Field(FieldType.DATETIME, nullable=True)

_W = Workspace.__table__.c
_P = Project.__table__.c
_R = Repository.__table__.c
_U = User.__table__.c
_M = WorkspaceMember.__table__.c
_T = ResourceAccessToken.__table__.c

#: Repositories (`GET /2.0/repositories/{workspace}`, `GET /2.0/repositories`), over
#: `views.JOINED` (a repository with its workspace and project).
REPOSITORIES = _listing({
    "uuid": (_braced(_R.uuid), _TEXT),
    "name": (_R.name, _TEXT),
    "slug": (_R.slug, _TEXT),
    "full_name": (_W.slug + literal("/", String) + _R.slug, _TEXT),
    "description": (_R.description, _TEXT),
    "is_private": (_R.is_private, _BOOLEAN),
    "size": (_R.size, _NUMBER),
    "created_on": (_R.created_on, _DATETIME),
    "updated_on": (_R.updated_on, _DATETIME),
    "mainbranch.name": (_R.mainbranch, _NULLABLE_TEXT),
    "project.key": (_P.key, _TEXT),
    "project.name": (_P.name, _TEXT),
    "project.uuid": (_braced(_P.uuid), _TEXT),
    "workspace.slug": (_W.slug, _TEXT),
    "workspace.name": (_W.name, _TEXT),
    "workspace.uuid": (_braced(_W.uuid), _TEXT),
    "owner.username": (_W.slug, _TEXT),
    "owner.uuid": (_braced(_W.uuid), _TEXT),
})

#: A workspace's projects (`GET /2.0/workspaces/{workspace}/projects`).
PROJECTS = _listing({
    "uuid": (_braced(_P.uuid), _TEXT),
    "key": (_P.key, _TEXT),
    "name": (_P.name, _TEXT),
    "description": (_P.description, _TEXT),
    "is_private": (_P.is_private, _BOOLEAN),
    "created_on": (_P.created_on, _DATETIME),
    "updated_on": (_P.updated_on, _DATETIME),
})

_MEMBER_USER = {
    "user.uuid": (_braced(_U.uuid), _TEXT),
    "user.account_id": (sql.replace(_U.uuid, "-", ""), _TEXT),
    "user.username": (_U.username, _TEXT),
    "user.nickname": (_U.username, _TEXT),
    "user.display_name": (_U.display_name, _TEXT),
}

#: A workspace's members (`GET /2.0/workspaces/{workspace}/members`).
MEMBERS = _listing({**_MEMBER_USER, "role": (_M.role, _TEXT)})

#: The caller's workspaces (`GET /2.0/workspaces`, `GET /2.0/user/workspaces`).
WORKSPACES = _listing({
    "uuid": (_braced(_W.uuid), _TEXT),
    "slug": (_W.slug, _TEXT),
    "name": (_W.name, _TEXT),
    "created_on": (_W.created_on, _DATETIME),
    "workspace.uuid": (_braced(_W.uuid), _TEXT),
    "workspace.slug": (_W.slug, _TEXT),
    "workspace.name": (_W.name, _TEXT),
    "administrator": (_M.role == "owner", _BOOLEAN),
})

#: A resource's access tokens (`GET …/access-tokens`).
RESOURCE_TOKENS = _listing({
    "id": (_T.id, _NUMBER),
    "uuid": (_braced(_T.uuid), _TEXT),
    "name": (_T.name, _TEXT),
    "scopes": (_T.scopes, _TEXT),
    "created_on": (_T.created_on, _DATETIME),
    "expires_on": (_T.expires_on, _NULLABLE_DATETIME),
    "last_used_on": (_T.last_used_on, _NULLABLE_DATETIME),
    "created_by.username": (_T.created_by_name, _TEXT),
})
