"""`q`, `sort` and `role` of Cloud listings: read from the query string, checked against the
listing's fields (domain/bbql.py), refused with a 400 naming the problem and its position."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Annotated, TypeVar

from fastapi import Depends, Query

from gitward.domain import bbql
from gitward.services.errors import BadRequest
from gitward.storage.query import Listing

E = TypeVar("E", bound=Enum)


@dataclass(frozen=True)
class ListingParams:
    q: str | None
    sort: str | None
    role: str | None

    def criteria(self, listing: Listing) -> bbql.Criteria:
        """The checked query and sort for `listing`; 400 if either does not fit it."""
        return self.criteria_of(listing.fields)

    def criteria_of(self, fields: bbql.Fields) -> bbql.Criteria:
        """The checked query and sort for a listing of `fields`; 400 if either does not fit."""
        try:
            query = bbql.check(bbql.parse(self.q), fields) if self.q else None
        except bbql.QueryError as error:
            raise BadRequest(str(error), f"in the query q={(self.q or '')[:200]!r}") from None
        try:
            sort = bbql.parse_sort(self.sort, fields) if self.sort else None
        except bbql.QueryError as error:
            raise BadRequest(str(error), f"in sort={(self.sort or '')[:200]!r}") from None
        return bbql.Criteria(query, sort)

    def role_of(self, roles: type[E]) -> E | None:
        """`role` as one of `roles`; 400 naming the accepted values otherwise."""
        if self.role is None or self.role == "":
            return None
        try:
            return roles(self.role)
        except ValueError:
            accepted = ", ".join(str(member.value) for member in roles)
            raise BadRequest(
                f"Invalid role {self.role[:40]!r}: use one of {accepted}."
            ) from None


async def listing_params(
    q: Annotated[str | None, Query(description="BBQL query (docs/cloud-api.md)")] = None,
    sort: Annotated[str | None, Query(description="Field to sort by; -field: descending")] = None,
    role: Annotated[str | None, Query(description="Only what the caller holds in this role")]
    = None,
) -> ListingParams:
    return ListingParams(q, sort, role)


ListingDep = Annotated[ListingParams, Depends(listing_params)]
