"""Gitward extensions on the caller's account: two-step verification and app passwords."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request, Response
from pydantic import BaseModel, ConfigDict

from gitward.services import account
from gitward.storage.models import AppPassword
from gitward.web.cloud_api import render
from gitward.web.deps import CallerDep, CloudPageDep, RuntimeDep

router = APIRouter(prefix="/2.0/user", tags=["account"])


class Code(BaseModel):
    model_config = ConfigDict(extra="ignore")
    code: Any = None


class AppPasswordCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    label: Any = None
    scopes: Any = None


@router.post("/two-step-verification")
def begin_two_step(caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Start two-step verification: the seed, its otpauth URI and 10 recovery codes, once."""
    enrollment = account.begin_two_step(caller, runtime.two_step)
    return {
        "secret": enrollment.secret,
        "otpauth_uri": enrollment.otpauth_uri,
        "recovery_codes": enrollment.recovery_codes,
        "enabled": False,
    }


@router.post("/two-step-verification/confirm")
def confirm_two_step(body: Code, caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    account.confirm_two_step(caller, runtime.two_step, body.code)
    return {"enabled": True}


@router.delete("/two-step-verification", status_code=204)
def disable_two_step(
    caller: CallerDep,
    runtime: RuntimeDep,
    body: Annotated[Code | None, Body()] = None,
    otp: Annotated[str | None, Header(alias="X-Gitward-OTP")] = None,
) -> Response:
    """Turn it off with a current code: `{"code"}` in the body or the X-Gitward-OTP header."""
    code = body.code if body is not None and isinstance(body.code, str) else otp
    account.disable_two_step(caller, runtime.two_step, code)
    return Response(status_code=204)


def _app_password(request: Request, row: AppPassword, secret: str | None = None
                  ) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "app_password",
        "id": row.id,
        "uuid": render.braced(row.uuid),
        "label": row.label,
        "scopes": row.scopes.split(),
        "created_on": render.iso(row.created_on),
        "last_used_on": render.iso(row.last_used_on),
        "last_used_ip": row.last_ip,
        "links": {
            "self": render.link(f"{render.base_url(request)}/2.0/user/app-passwords/{row.id}")
        },
    }
    if secret is not None:
        body["password"] = secret
    return body


@router.post("/app-passwords", status_code=201)
def create_app_password(
    request: Request, body: AppPasswordCreate, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    created = account.create_app_password(
        caller, runtime.app_passwords, label=body.label, scopes=body.scopes
    )
    return _app_password(request, created.app_password, created.secret)


@router.get("/app-passwords")
def list_app_passwords(request: Request, caller: CallerDep, paging: CloudPageDep
                       ) -> dict[str, Any]:
    rows = account.list_app_passwords(caller)
    return render.page(request, rows, paging, lambda r: _app_password(request, r))


@router.delete("/app-passwords/{app_id}", status_code=204)
def revoke_app_password(app_id: str, caller: CallerDep) -> Response:
    account.revoke_app_password(caller, app_id)
    return Response(status_code=204)
