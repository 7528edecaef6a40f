"""Personal access tokens: Bitbucket Server's `/rest/access-tokens/1.0` (`latest` is an alias of
1.0 for the whole surface: web/server_api/surface.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from gitward.services import credential_usage
from gitward.services import personal_tokens as service
from gitward.services.errors import BadRequest
from gitward.web.deps import CallerDep, RuntimeDep, ServerPageDep
from gitward.web.pipeline import UnitRoute
from gitward.web.server_api import render

router = APIRouter(
    route_class=UnitRoute,
    prefix="/access-tokens/1.0/users/{user_slug}",
    tags=["access tokens"],
)



class TokenCreate(BaseModel):
    """Types are checked by the service, so that each problem gets Bitbucket's message."""

    model_config = ConfigDict(extra="ignore")
    name: Any = None
    permissions: Any = None
    expiryDays: Any = None
    allowedIps: Any = None
    refPatterns: Any = None
    fastForwardOnly: Any = None


class TokenUpdate(TokenCreate):
    pass


@router.put("")
def create_token(
    request: Request,
    user_slug: str,
    body: TokenCreate,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Create a token for yourself, signed in with your password. The secret is shown once."""
    created = service.create_token(
        caller,
        runtime.personal_tokens,
        runtime.settings,
        user_slug,
        name=body.name,
        permissions=body.permissions,
        expiry_days=body.expiryDays,
        allowed_ips=body.allowedIps,
        ref_patterns=body.refPatterns,
        fast_forward_only=body.fastForwardOnly,
    )
    return render.token(request, created.token, created.owner, created.secret)


@router.get("")
def list_tokens(
    request: Request, user_slug: str, caller: CallerDep, paging: ServerPageDep
) -> dict[str, Any]:
    owner, tokens = service.list_tokens(caller, user_slug, render.window(paging))
    return render.page(tokens, paging, lambda t: render.token(request, t, owner))


@router.get("/{token_id}")
def get_token(
    request: Request, user_slug: str, token_id: str, caller: CallerDep
) -> dict[str, Any]:
    owner, token = service.get_token(caller, user_slug, token_id)
    return render.token(request, token, owner)


@router.get("/{token_id}/usage")
def token_usage(user_slug: str, token_id: str, caller: CallerDep) -> dict[str, Any]:
    """What the token was used for in the last 90 days, and the permissions it never used
    (docs/credential-usage.md)."""
    _, token = service.get_token(caller, user_slug, token_id)
    return render.usage(credential_usage.pat_report(
        caller.store, token.id, token.repo_permission, token.project_permission
    ))


@router.post("/{token_id}")
def modify_token(
    request: Request,
    user_slug: str,
    token_id: str,
    body: TokenUpdate,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Change the name, permissions, address allow-list (`allowedIps`, `[]` for anywhere),
    ref patterns (`refPatterns`, null for every ref) or `fastForwardOnly`; fields not sent
    stay. Expiry cannot change."""
    sent = body.model_fields_set
    if "expiryDays" in sent:
        raise BadRequest("The expiry of a token cannot be changed: create a new token instead.")
    kwargs: dict[str, Any] = {}
    if "name" in sent:
        kwargs["name"] = body.name
    if "permissions" in sent:
        kwargs["permissions"] = body.permissions
    if "allowedIps" in sent:
        kwargs["allowed_ips"] = body.allowedIps
    if "refPatterns" in sent:
        kwargs["ref_patterns"] = body.refPatterns
    if "fastForwardOnly" in sent:
        kwargs["fast_forward_only"] = body.fastForwardOnly
    owner, token = service.modify_token(
        caller, runtime.personal_tokens, user_slug, token_id, **kwargs
    )
    return render.token(request, token, owner)


@router.delete("/{token_id}", status_code=204)
def revoke_token(
    user_slug: str, token_id: str, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    service.revoke_token(caller, runtime.personal_tokens, user_slug, token_id)
    return Response(status_code=204)


@router.post("/{token_id}/rotate")
def rotate_token(
    request: Request,
    user_slug: str,
    token_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """A new secret, same name, permissions and remaining lifetime; the old secret stops now."""
    rotated = service.rotate_token(caller, runtime.personal_tokens, user_slug, token_id)
    return render.token(request, rotated.token, rotated.owner, rotated.secret)
