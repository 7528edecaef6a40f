"""Bitbucket Server's HTTP access tokens of projects and repositories:
`/rest/access-tokens/1.0/projects/{key}[/repos/{slug}][/{tokenId}]`.

They are the project and repository access tokens of the Cloud API (`gwprj_`, `gwrep_`,
services/resource_tokens.py), seen with Server's permission names: a token made here is
listed there and the other way round. Permissions become scopes, and scopes read back as
permissions, through the tables of domain/server_permissions.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from gitward.credentials.personal import InvalidPermissions, parse_permissions
from gitward.domain.permissions import PAT_PERMISSION_LEVELS, PatPermission, ResourceKind
from gitward.domain.server_permissions import scopes_of
from gitward.services import credential_usage, site, validation
from gitward.services import resource_tokens as service
from gitward.services.errors import BadRequest
from gitward.storage.models import utcnow
from gitward.web.deps import CallerDep, RuntimeDep, ServerPageDep
from gitward.web.pipeline import UnitRoute
from gitward.web.server_api import render, resources

router = APIRouter(
    route_class=UnitRoute, prefix="/access-tokens/1.0/projects/{project_key}",
    tags=["access tokens"],
)
REPO = "/repos/{repo_slug}"


class TokenBody(BaseModel):
    """Types are checked below and by the service, so that each problem gets its message."""

    model_config = ConfigDict(extra="ignore")
    name: Any = None
    permissions: Any = None
    expiryDays: Any = None
    allowedIps: Any = None
    refPatterns: Any = None
    fastForwardOnly: Any = None


def _scopes(kind: ResourceKind, permissions: Any) -> list[str]:
    """Server permissions (one REPO_*, and for a project at most one PROJECT_* no higher than
    it, as for personal tokens) as the scope names they grant."""
    try:
        parsed = parse_permissions(permissions)
    except InvalidPermissions as error:
        raise BadRequest(str(error)) from None
    if kind is ResourceKind.REPOSITORY and parsed.project is not None:
        raise BadRequest(
            "A repository access token takes repository permissions only (REPO_READ, "
            "REPO_WRITE or REPO_ADMIN)."
        )
    held = [PatPermission(name) for name in parsed.names()]
    assert all(p in PAT_PERMISSION_LEVELS for p in held)
    return sorted(scope.value for scope in scopes_of(held))


def _expires_on(days: Any) -> str | None:
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise BadRequest(f"expiryDays must be a positive integer, not {days!r:.40}.")
    if days > validation.MAX_EXPIRY_DAYS:
        raise BadRequest(
            f"expiryDays must be at most {validation.MAX_EXPIRY_DAYS}; leave it out for a "
            "token that does not expire."
        )
    return (utcnow() + timedelta(days=days)).isoformat()


def _create(
    request: Request, caller: Any, runtime: Any, resource: service.Resource, body: TokenBody
) -> dict[str, Any]:
    created = service.create_token(
        caller,
        runtime.resource_tokens,
        resource,
        name=body.name,
        scopes=_scopes(resource.kind, body.permissions),
        expires_on=_expires_on(body.expiryDays),
        allowed_ips=body.allowedIps,
        allowed_ips_field="allowedIps",
        ref_patterns=body.refPatterns,
        fast_forward_only=body.fastForwardOnly,
        fields=service.SERVER_FIELDS,
    )
    return resources.access_token(request, created.token, created.secret)


def _modify(
    request: Request, caller: Any, resource: service.Resource, token_id: str, body: TokenBody
) -> dict[str, Any]:
    sent = body.model_fields_set
    if "expiryDays" in sent:
        raise BadRequest("The expiry of a token cannot be changed: create a new token instead.")
    token = service.modify_token(
        caller,
        resource,
        token_id,
        name=body.name if "name" in sent else None,
        scopes=_scopes(resource.kind, body.permissions) if "permissions" in sent else None,
        allowed_ips=body.allowedIps if "allowedIps" in sent else service.KEEP,
        allowed_ips_field="allowedIps",
        ref_patterns=body.refPatterns if "refPatterns" in sent else service.KEEP,
        fast_forward_only=body.fastForwardOnly if "fastForwardOnly" in sent else service.KEEP,
        fields=service.SERVER_FIELDS,
    )
    return resources.access_token(request, token)


def _list(
    request: Request, caller: Any, resource: service.Resource, paging: Any
) -> dict[str, Any]:
    tokens = service.list_tokens(caller, resource, render.window(paging))
    return render.page(tokens, paging, lambda t: resources.access_token(request, t))


# -- project ----------------------------------------------------------------------------------


@router.put("")
def create_project_token(
    request: Request, project_key: str, body: TokenBody, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """A project access token, for project admins signed in with their password; the
    secret is in this answer only."""
    return _create(request, caller, runtime, site.token_resource(caller, project_key), body)


@router.get("")
def list_project_tokens(
    request: Request, project_key: str, caller: CallerDep, paging: ServerPageDep
) -> dict[str, Any]:
    return _list(request, caller, site.token_resource(caller, project_key), paging)


@router.get("/{token_id}")
def get_project_token(
    request: Request, project_key: str, token_id: str, caller: CallerDep
) -> dict[str, Any]:
    token = service.get_token(caller, site.token_resource(caller, project_key), token_id)
    return resources.access_token(request, token)


@router.get("/{token_id}/usage")
def project_token_usage(project_key: str, token_id: str, caller: CallerDep) -> dict[str, Any]:
    """What the token was used for in the last 90 days (docs/credential-usage.md)."""
    token = service.get_token(caller, site.token_resource(caller, project_key), token_id)
    return render.usage(credential_usage.resource_token_report(caller.store, token))


@router.post("/{token_id}")
def modify_project_token(
    request: Request, project_key: str, token_id: str, body: TokenBody, caller: CallerDep
) -> dict[str, Any]:
    """A new name or permissions; fields not sent stay, the expiry cannot change."""
    return _modify(request, caller, site.token_resource(caller, project_key), token_id, body)


@router.delete("/{token_id}", status_code=204)
def revoke_project_token(project_key: str, token_id: str, caller: CallerDep) -> Response:
    service.revoke_token(caller, site.token_resource(caller, project_key), token_id)
    return Response(status_code=204)


# -- repository -------------------------------------------------------------------------------


@router.put(REPO)
def create_repository_token(
    request: Request, project_key: str, repo_slug: str, body: TokenBody, caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """A repository access token, for repository admins signed in with their password."""
    resource = site.token_resource(caller, project_key, repo_slug)
    return _create(request, caller, runtime, resource, body)


@router.get(REPO)
def list_repository_tokens(
    request: Request, project_key: str, repo_slug: str, caller: CallerDep, paging: ServerPageDep
) -> dict[str, Any]:
    return _list(request, caller, site.token_resource(caller, project_key, repo_slug), paging)


@router.get(REPO + "/{token_id}")
def get_repository_token(
    request: Request, project_key: str, repo_slug: str, token_id: str, caller: CallerDep
) -> dict[str, Any]:
    resource = site.token_resource(caller, project_key, repo_slug)
    return resources.access_token(request, service.get_token(caller, resource, token_id))


@router.get(REPO + "/{token_id}/usage")
def repository_token_usage(
    project_key: str, repo_slug: str, token_id: str, caller: CallerDep
) -> dict[str, Any]:
    resource = site.token_resource(caller, project_key, repo_slug)
    token = service.get_token(caller, resource, token_id)
    return render.usage(credential_usage.resource_token_report(caller.store, token))


@router.post(REPO + "/{token_id}")
def modify_repository_token(
    request: Request, project_key: str, repo_slug: str, token_id: str, body: TokenBody,
    caller: CallerDep,
) -> dict[str, Any]:
    resource = site.token_resource(caller, project_key, repo_slug)
    return _modify(request, caller, resource, token_id, body)


@router.delete(REPO + "/{token_id}", status_code=204)
def revoke_repository_token(
    project_key: str, repo_slug: str, token_id: str, caller: CallerDep
) -> Response:
    service.revoke_token(caller, site.token_resource(caller, project_key, repo_slug), token_id)
    return Response(status_code=204)
