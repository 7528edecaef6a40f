"""Bitbucket Server's admin API: users, their passwords and their guessing locks, for site
administrators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from gitward.services import passwords, site, users
from gitward.services.errors import BadRequest
from gitward.web.deps import CallerDep, RuntimeDep, ServerPageDep
from gitward.web.openapi import NAMES_A_RESOURCE
from gitward.web.pipeline import UnitRoute
from gitward.web.server_api import render

router = APIRouter(route_class=UnitRoute, prefix="/api", tags=["server admin"])
#: The operations that name the user in their query or body: 404 when there is none.
NAMES_A_USER: dict[str, Any] = {"openapi_extra": {NAMES_A_RESOURCE: True}}


@router.get("/1.0/admin/users")
def list_users(
    request: Request,
    caller: CallerDep,
    paging: ServerPageDep,
    filter: Annotated[str | None, Query(max_length=255)] = None,
) -> dict[str, object]:
    """Every account, by username, for site administrators (`filter` as on /users)."""
    page = site.admin_users(caller, render.window(paging), text=filter)
    return render.page(page, paging, lambda u: render.user(request, u))


@router.post("/1.0/admin/users", status_code=204)
def create_user(
    caller: CallerDep,
    runtime: RuntimeDep,
    name: Annotated[str | None, Query(max_length=200)] = None,
    password: Annotated[str | None, Query(max_length=2048)] = None,
    displayName: Annotated[str | None, Query(max_length=255)] = None,
    emailAddress: Annotated[str | None, Query(max_length=255)] = None,
) -> Response:
    """Create a user, as Bitbucket Server does: 204 No Content. Site administrators only."""
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


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    name: str = Field(max_length=200)
    displayName: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=255)
    # Gitward extension: false deactivates the account, true reactivates it.
    active: bool | None = None
    # Not a field of Bitbucket Server's UserUpdate, which changes no password: named here
    # only so that sending it is refused rather than silently ignored.
    password: Any = None


#: Where a password is set, for the refusal of `password` in an update of user details.
SET_PASSWORD_CALL = (
    "PUT /rest/api/1.0/admin/users/credentials with {\"name\", \"password\", "
    "\"passwordConfirm\"}"
)


@router.put("/1.0/admin/users", **NAMES_A_USER)
def update_user(
    request: Request, body: UserUpdate, caller: CallerDep
) -> dict[str, object]:
    """Change a user's details (as Bitbucket Server), or deactivate them (`active`)."""
    if "password" in body.model_fields_set:
        raise BadRequest(
            "A user's details do not include the password, which was not changed: set it "
            f"with {SET_PASSWORD_CALL}."
        )
    user = users.update_user_as(
        caller, body.name, display_name=body.displayName, email=body.email, active=body.active
    )
    return render.user(request, user)


class AdminPasswordUpdate(BaseModel):
    """Bitbucket Server's AdminPasswordUpdate; values are checked by the service."""

    model_config = ConfigDict(extra="ignore")
    name: Any = None
    password: Any = None
    passwordConfirm: Any = None


@router.put("/1.0/admin/users/credentials", status_code=204, **NAMES_A_USER)
def set_user_password(
    body: AdminPasswordUpdate, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    """Set a user's password (Bitbucket Server: 204). Site administrators only. For anyone
    but the administrator themself the password is temporary: it authenticates for nothing
    but changing it (`PUT /rest/api/1.0/users/credentials`), which the user must do first."""
    caller.require_site_admin()
    if not isinstance(body.name, str) or not body.name:
        raise BadRequest("Missing required field: name")
    if body.password is None:
        raise BadRequest("Missing required field: password")
    if body.passwordConfirm is None:
        raise BadRequest("Missing required field: passwordConfirm")
    passwords.reset_password(
        caller,
        runtime.account_passwords,
        body.name,
        password=body.password,
        confirm=body.passwordConfirm,
    )
    return Response(status_code=204)


@router.delete("/1.0/admin/users/captcha", status_code=204, **NAMES_A_USER)
def clear_lock(
    caller: CallerDep,
    runtime: RuntimeDep,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Lift the guessing lock of a user's password (Bitbucket Server's "Clear CAPTCHA for
    user", the lock Bitbucket puts after failed sign-ins): every failed attempt at it is
    forgotten, from every address. Site administrators only; 204."""
    if not name:
        raise BadRequest("Missing required parameter: name")
    passwords.unlock(caller, runtime.password_guard, name)
    return Response(status_code=204)


@router.delete("/1.0/admin/users", **NAMES_A_USER)
def delete_user(
    request: Request,
    caller: CallerDep,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, object]:
    """Delete a user (as Bitbucket Server: 200 with the deleted user)."""
    if not name:
        raise BadRequest("Missing required parameter: name")
    user = users.delete_user_as(caller, name)
    return render.user(request, user)
