"""Bitbucket Server's admin API: user creation by site administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from gitward.services import users
from gitward.services.errors import BadRequest
from gitward.web.deps import CallerDep, RuntimeDep

router = APIRouter(prefix="/rest/api", tags=["server admin"])


@router.post("/{version}/admin/users", status_code=204)
def create_user(
    version: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    name: Annotated[str | None, Query(max_length=200)] = None,
    password: Annotated[str | None, Query(max_length=2048)] = None,
    displayName: Annotated[str | None, Query(max_length=255)] = None,  # noqa: N803
    emailAddress: Annotated[str | None, Query(max_length=255)] = None,  # noqa: N803
) -> Response:
    """Create a user, as Bitbucket Server does: 204 No Content. Site administrators only."""
    _check_version(version)
    caller.require_site_admin()
    missing = [
        field
        for field, value in (("name", name), ("password", password), ("emailAddress", emailAddress))
        if not value
    ]
    if missing:
        raise BadRequest(f"Missing required parameter(s): {', '.join(missing)}")
    assert name and password and emailAddress  # for the type checker; checked above
    users.create_user_as(
        caller,
        runtime.passwords,
        username=name,
        email=emailAddress,
        password=password,
        display_name=displayName,
    )
    return Response(status_code=204)


def _check_version(version: str) -> None:
    if version not in ("1.0", "latest"):
        raise BadRequest(f"Unknown API version {version!r}: use 1.0 or latest")
