"""Repository, project and workspace access tokens: the REST that Bitbucket Cloud lacks.

Created by the resource's admins in person; the secret is in the 201 response only. A token
cannot be viewed or edited afterwards: it is revoked and replaced.

The three resources get three explicit sets of thin routes (the work is in `_create`, `_list`
and the service) so that each declares its own path parameters and /openapi.json describes
them exactly.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from gitward.domain import networks, refs
from gitward.domain.permissions import ResourceKind
from gitward.services import credential_usage
from gitward.services import resource_tokens as service
from gitward.storage.models import ResourceAccessToken
from gitward.storage.query import RESOURCE_TOKENS
from gitward.web.cloud_api import render
from gitward.web.cloud_api.query import ListingDep, ListingParams
from gitward.web.deps import CallerDep, CloudPageDep, RuntimeDep
from gitward.web.pipeline import UnitRoute

router = APIRouter(route_class=UnitRoute, tags=["access tokens"])


class TokenCreate(BaseModel):
    """Types are checked by the service so that each problem gets its own message."""

    model_config = ConfigDict(extra="ignore")
    name: Any = None
    scopes: Any = None
    expires_on: Any = None
    allowed_ips: Any = None
    ref_patterns: Any = None
    fast_forward_only: Any = None


def _json(request: Request, t: ResourceAccessToken, path: str, secret: str | None = None
          ) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"{t.kind}_access_token",
        "id": t.id,
        "uuid": render.braced(t.uuid),
        "name": t.name,
        "scopes": t.scopes.split(),
        "created_on": render.iso(t.created_on),
        "expires_on": render.iso(t.expires_on),
        "last_used_on": render.iso(t.last_used_on),
        "last_used_ip": t.last_ip,
        "allowed_ips": networks.listed(t.allowed_ips),
        "ref_patterns": refs.listed(t.ref_patterns),
        "fast_forward_only": t.fast_forward_only,
        "created_by": {"type": "user", "username": t.created_by_name},
        "links": {"self": render.link(f"{render.base_url(request)}{path}/{t.id}")},
    }
    if secret is not None:
        body["token"] = secret
    return body


def _create(request: Request, caller: Any, runtime: Any, resource: service.Resource,
            body: TokenCreate) -> dict[str, Any]:
    created = service.create_token(
        caller,
        runtime.resource_tokens,
        resource,
        name=body.name,
        scopes=body.scopes,
        expires_on=body.expires_on,
        allowed_ips=body.allowed_ips,
        ref_patterns=body.ref_patterns,
        fast_forward_only=body.fast_forward_only,
    )
    return _json(request, created.token, request.url.path, created.secret)


def _list(request: Request, caller: Any, resource: service.Resource, paging: Any,
          listing: ListingParams) -> dict[str, Any]:
    tokens = service.list_tokens(
        caller, resource, render.window(paging), listing.criteria(RESOURCE_TOKENS)
    )
    return render.page(request, tokens, paging, lambda t: _json(request, t, request.url.path))


# -- repository -------------------------------------------------------------------------------

REPO = "/repositories/{workspace}/{repo_slug}/access-tokens"


@router.post(REPO, status_code=201)
def create_repository_token(
    request: Request, workspace: str, repo_slug: str, body: TokenCreate, caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    resource = service.resolve(caller, ResourceKind.REPOSITORY, workspace, repo_slug=repo_slug)
    return _create(request, caller, runtime, resource, body)


@router.get(REPO)
def list_repository_tokens(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep, paging: CloudPageDep,
    listing: ListingDep,
) -> dict[str, Any]:
    resource = service.resolve(caller, ResourceKind.REPOSITORY, workspace, repo_slug=repo_slug)
    return _list(request, caller, resource, paging, listing)


@router.get(REPO + "/{token_id}")
def get_repository_token(
    request: Request, workspace: str, repo_slug: str, token_id: str, caller: CallerDep
) -> dict[str, Any]:
    resource = service.resolve(caller, ResourceKind.REPOSITORY, workspace, repo_slug=repo_slug)
    token = service.get_token(caller, resource, token_id)
    return _json(request, token, request.url.path.rsplit("/", 1)[0])


@router.get(REPO + "/{token_id}/usage")
def repo_token_usage(
    workspace: str, repo_slug: str, token_id: str, caller: CallerDep
) -> dict[str, Any]:
    """What the token was used for in the last 90 days (docs/credential-usage.md)."""
    resource = service.resolve(caller, ResourceKind.REPOSITORY, workspace, repo_slug=repo_slug)
    token = service.get_token(caller, resource, token_id)
    return render.usage(credential_usage.resource_token_report(caller.store, token))


@router.delete(REPO + "/{token_id}", status_code=204)
def revoke_repository_token(
    workspace: str, repo_slug: str, token_id: str, caller: CallerDep
) -> Response:
    resource = service.resolve(caller, ResourceKind.REPOSITORY, workspace, repo_slug=repo_slug)
    service.revoke_token(caller, resource, token_id)
    return Response(status_code=204)


# -- project ----------------------------------------------------------------------------------

PROJECT = "/workspaces/{workspace}/projects/{project_key}/access-tokens"


@router.post(PROJECT, status_code=201)
def create_project_token(
    request: Request, workspace: str, project_key: str, body: TokenCreate, caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    resource = service.resolve(caller, ResourceKind.PROJECT, workspace, project_key=project_key)
    return _create(request, caller, runtime, resource, body)


@router.get(PROJECT)
def list_project_tokens(
    request: Request, workspace: str, project_key: str, caller: CallerDep, paging: CloudPageDep,
    listing: ListingDep,
) -> dict[str, Any]:
    resource = service.resolve(caller, ResourceKind.PROJECT, workspace, project_key=project_key)
    return _list(request, caller, resource, paging, listing)


@router.get(PROJECT + "/{token_id}")
def get_project_token(
    request: Request, workspace: str, project_key: str, token_id: str, caller: CallerDep
) -> dict[str, Any]:
    resource = service.resolve(caller, ResourceKind.PROJECT, workspace, project_key=project_key)
    token = service.get_token(caller, resource, token_id)
    return _json(request, token, request.url.path.rsplit("/", 1)[0])


@router.get(PROJECT + "/{token_id}/usage")
def project_token_usage(
    workspace: str, project_key: str, token_id: str, caller: CallerDep
) -> dict[str, Any]:
    """What the token was used for in the last 90 days (docs/credential-usage.md)."""
    resource = service.resolve(caller, ResourceKind.PROJECT, workspace, project_key=project_key)
    token = service.get_token(caller, resource, token_id)
    return render.usage(credential_usage.resource_token_report(caller.store, token))


@router.delete(PROJECT + "/{token_id}", status_code=204)
def revoke_project_token(
    workspace: str, project_key: str, token_id: str, caller: CallerDep
) -> Response:
    resource = service.resolve(caller, ResourceKind.PROJECT, workspace, project_key=project_key)
    service.revoke_token(caller, resource, token_id)
    return Response(status_code=204)


# -- workspace --------------------------------------------------------------------------------

WORKSPACE = "/workspaces/{workspace}/access-tokens"


@router.post(WORKSPACE, status_code=201)
def create_workspace_token(
    request: Request, workspace: str, body: TokenCreate, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    resource = service.resolve(caller, ResourceKind.WORKSPACE, workspace)
    return _create(request, caller, runtime, resource, body)


@router.get(WORKSPACE)
def list_workspace_tokens(
    request: Request, workspace: str, caller: CallerDep, paging: CloudPageDep,
    listing: ListingDep,
) -> dict[str, Any]:
    resource = service.resolve(caller, ResourceKind.WORKSPACE, workspace)
    return _list(request, caller, resource, paging, listing)


@router.get(WORKSPACE + "/{token_id}")
def get_workspace_token(
    request: Request, workspace: str, token_id: str, caller: CallerDep
) -> dict[str, Any]:
    resource = service.resolve(caller, ResourceKind.WORKSPACE, workspace)
    token = service.get_token(caller, resource, token_id)
    return _json(request, token, request.url.path.rsplit("/", 1)[0])


@router.get(WORKSPACE + "/{token_id}/usage")
def workspace_token_usage(workspace: str, token_id: str, caller: CallerDep) -> dict[str, Any]:
    """What the token was used for in the last 90 days (docs/credential-usage.md)."""
    resource = service.resolve(caller, ResourceKind.WORKSPACE, workspace)
    token = service.get_token(caller, resource, token_id)
    return render.usage(credential_usage.resource_token_report(caller.store, token))


@router.delete(WORKSPACE + "/{token_id}", status_code=204)
def revoke_workspace_token(workspace: str, token_id: str, caller: CallerDep) -> Response:
    resource = service.resolve(caller, ResourceKind.WORKSPACE, workspace)
    service.revoke_token(caller, resource, token_id)
    return Response(status_code=204)
