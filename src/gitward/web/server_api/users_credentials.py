"""Bitbucket Server's `PUT /rest/api/1.0/users/credentials`: the caller changes their own
password."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from gitward.services import passwords
from gitward.services.errors import NotFound
from gitward.web.deps import CallerDep, RuntimeDep
from gitward.web.pipeline import UnitRoute

router = APIRouter(route_class=UnitRoute, prefix="/api", tags=["server users"])


class PasswordUpdate(BaseModel):
    """Bitbucket Server's PasswordUpdate; values are checked by the service."""

    model_config = ConfigDict(extra="ignore")
    oldPassword: Any = None
    password: Any = None
    passwordConfirm: Any = None


@router.put("/{version}/users/credentials", status_code=204)
def change_password(
    version: str, body: PasswordUpdate, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    """Change your own password (204), signed in with your account password; the current
    one again in `oldPassword`. Tokens and app passwords cannot change it. This is the one
    call a temporary password set by an administrator may make."""
    if version not in ("1.0", "latest"):
        raise NotFound(f"Unknown API version {version[:20]!r}: use 1.0 or latest")
    passwords.change_password(
        caller,
        runtime.account_passwords,
        current=body.oldPassword,
        new=body.password,
        confirm=body.passwordConfirm,
        confirm_field="passwordConfirm",
    )
    return Response(status_code=204)
