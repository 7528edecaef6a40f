"""The caller's account: API tokens (as Bitbucket Cloud), and Gitward's extensions:
two-step verification, app passwords, and the OAuth consumers the caller has authorized."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request, Response
from pydantic import BaseModel, ConfigDict

from gitward.domain import networks
from gitward.services import account, api_tokens, credential_usage, oauth_authorizations
from gitward.storage.models import ApiToken, AppPassword
from gitward.web.cloud_api import render
from gitward.web.deps import CallerDep, CloudPageDep, RuntimeDep
from gitward.web.pipeline import UnitRoute

router = APIRouter(route_class=UnitRoute, prefix="/user", tags=["account"])


class Code(BaseModel):
    model_config = ConfigDict(extra="ignore")
    code: Any = None


class AppPasswordCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    label: Any = None
    scopes: Any = None
    allowed_ips: Any = None


class ApiTokenCreate(BaseModel):
    """Types are checked by the service so that each problem gets its own message."""

    model_config = ConfigDict(extra="ignore")
    name: Any = None
    scopes: Any = None
    expires_on: Any = None
    allowed_ips: Any = None


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
    """Turn it off with one current code: the X-Gitward-OTP header the request signs in with
    (enough on its own), or `{"code"}` in the body."""
    code = body.code if body is not None and isinstance(body.code, str) else None
    account.disable_two_step(caller, runtime.two_step, code, signed_in_with=otp)
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
        "allowed_ips": networks.listed(row.allowed_ips),
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
        caller, runtime.app_passwords, label=body.label, scopes=body.scopes,
        allowed_ips=body.allowed_ips,
    )
    return _app_password(request, created.app_password, created.secret)


@router.get("/app-passwords")
def list_app_passwords(request: Request, caller: CallerDep, paging: CloudPageDep
                       ) -> dict[str, Any]:
    rows = account.list_app_passwords(caller, render.window(paging))
    return render.page(request, rows, paging, lambda r: _app_password(request, r))


@router.get("/app-passwords/{app_id}")
def get_app_password(request: Request, app_id: str, caller: CallerDep) -> dict[str, Any]:
    return _app_password(request, account.find_app_password(caller, app_id))


@router.get("/app-passwords/{app_id}/usage")
def app_password_usage(app_id: str, caller: CallerDep) -> dict[str, Any]:
    """What the app password was used for in the last 90 days, and the scopes it never
    used (docs/credential-usage.md)."""
    row = account.find_app_password(caller, app_id)
    return render.usage(credential_usage.app_password_report(caller.store, row))


@router.delete("/app-passwords/{app_id}", status_code=204)
def revoke_app_password(app_id: str, caller: CallerDep) -> Response:
    account.revoke_app_password(caller, app_id)
    return Response(status_code=204)


def _api_token(request: Request, row: ApiToken, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "api_token",
        "id": row.id,
        "uuid": render.braced(row.uuid),
        "name": row.name,
        "scopes": row.scopes.split(),
        "created_on": render.iso(row.created_on),
        "expires_on": render.iso(row.expires_on),
        "last_used_on": render.iso(row.last_used_on),
        "last_used_ip": row.last_ip,
        "allowed_ips": networks.listed(row.allowed_ips),
        "links": {
            "self": render.link(f"{render.base_url(request)}/2.0/user/api-tokens/{row.id}")
        },
    }
    if secret is not None:
        body["token"] = secret
    return body


@router.post("/api-tokens", status_code=201)
def create_api_token(
    request: Request, body: ApiTokenCreate, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Create an API token: `{"name", "scopes": [...], "expires_on", "allowed_ips"?}`. The
    token is in this answer only."""
    created = api_tokens.create_token(
        caller, runtime.api_tokens, name=body.name, scopes=body.scopes,
        expires_on=body.expires_on, allowed_ips=body.allowed_ips,
    )
    return _api_token(request, created.token, created.secret)


@router.get("/api-tokens")
def list_api_tokens(request: Request, caller: CallerDep, paging: CloudPageDep
                    ) -> dict[str, Any]:
    rows = api_tokens.list_tokens(caller, render.window(paging))
    return render.page(request, rows, paging, lambda r: _api_token(request, r))


@router.get("/api-tokens/{token_id}")
def get_api_token(request: Request, token_id: str, caller: CallerDep) -> dict[str, Any]:
    return _api_token(request, api_tokens.find_token(caller, token_id))


@router.get("/api-tokens/{token_id}/usage")
def api_token_usage(token_id: str, caller: CallerDep) -> dict[str, Any]:
    row = api_tokens.find_token(caller, token_id)
    return render.usage(
        credential_usage.api_token_report(caller.store, row.id, row.scopes.split())
    )


@router.delete("/api-tokens/{token_id}", status_code=204)
def revoke_api_token(token_id: str, caller: CallerDep) -> Response:
    api_tokens.revoke_token(caller, token_id)
    return Response(status_code=204)


def _authorization(request: Request, a: oauth_authorizations.Authorization) -> dict[str, Any]:
    base = render.base_url(request)
    return {
        "type": "oauth_authorization",
        "consumer": {
            "type": "oauth_consumer",
            "key": a.consumer.key,
            "uuid": render.braced(a.consumer.uuid),
            "name": a.consumer.name,
            "description": a.consumer.description,
            "workspace": {"type": "workspace", "slug": a.workspace_slug},
        },
        "scopes": sorted(a.scopes),
        "created_on": render.iso(a.created_on),
        "last_used_on": render.iso(a.last_used_on),
        "links": {
            "self": render.link(f"{base}/2.0/user/oauth-authorizations/{a.consumer.key}")
        },
    }


@router.get("/oauth-authorizations")
def list_oauth_authorizations(
    request: Request, caller: CallerDep, paging: CloudPageDep
) -> dict[str, Any]:
    """The OAuth consumers you have let act for you, with what they may do."""
    rows = oauth_authorizations.list_authorizations(caller, render.window(paging))
    return render.page(request, rows, paging, lambda a: _authorization(request, a))


@router.get("/oauth-authorizations/{consumer}")
def get_oauth_authorization(request: Request, consumer: str, caller: CallerDep
                            ) -> dict[str, Any]:
    return _authorization(request, oauth_authorizations.find_authorization(caller, consumer))


@router.delete("/oauth-authorizations/{consumer}", status_code=204)
def revoke_oauth_authorization(consumer: str, caller: CallerDep) -> Response:
    """Take back what you granted a consumer (its key, or its uuid in braces): every code,
    access token and refresh token, at once."""
    oauth_authorizations.revoke_authorization(caller, consumer)
    return Response(status_code=204)
