"""OIDC trusts of repositories, projects and workspaces (workload identity federation,
docs/oidc-federation.md): the REST to register, list, read and delete them.

Managed by the resource's admins in person, like its access tokens (`resource_tokens.resolve`
decides): a trust mints access tokens. Three explicit sets of thin routes, so that each
declares its own path parameters in /openapi.json.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from gitward.domain.permissions import ResourceKind
from gitward.runtime import Runtime
from gitward.services import oidc_trusts as service
from gitward.services.caller import Caller
from gitward.services.resource_tokens import Resource, resolve
from gitward.storage.models import OidcTrust
from gitward.web.cloud_api import render
from gitward.web.deps import CallerDep, CloudPageDep, RuntimeDep
from gitward.web.pipeline import UnitRoute

router = APIRouter(route_class=UnitRoute, tags=["oidc trusts"])


class TrustCreate(BaseModel):
    """Types are checked by the service so that each problem gets its own message; unknown
    fields are refused (a misspelt condition must not widen a trust)."""

    model_config = ConfigDict(extra="allow")
    issuer: Any = None
    audience: Any = None
    subject: Any = None
    claims: Any = None
    scopes: Any = None
    ttl_seconds: Any = None


def _json(request: Request, t: OidcTrust, path: str) -> dict[str, Any]:
    return {
        "type": "oidc_trust",
        "id": t.id,
        "uuid": render.braced(t.uuid),
        "resource_type": t.kind,
        "issuer": t.issuer,
        "audience": t.audience,
        "subject": t.subject,
        "claims": service.trust_claims(t),
        "scopes": t.scopes.split(),
        "ttl_seconds": t.ttl_seconds,
        "created_on": render.iso(t.created_on),
        "last_used_on": render.iso(t.last_used_on),
        "created_by": {"type": "user", "username": t.created_by_name},
        "links": {"self": render.link(f"{render.base_url(request)}{path}/{t.id}")},
    }


def _create(request: Request, caller: Caller, runtime: Runtime, resource: Resource,
            body: TrustCreate) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    fields.update(body.model_extra or {})
    trust = service.create_trust(caller, runtime.oidc_keys.rules, resource, fields)
    return _json(request, trust, request.url.path.rstrip("/"))


def _list(request: Request, caller: Caller, resource: Resource, paging: Any) -> dict[str, Any]:
    trusts = service.list_trusts(caller, resource, render.window(paging))
    path = request.url.path.rstrip("/")
    return render.page(request, trusts, paging, lambda t: _json(request, t, path))


def _one(request: Request, caller: Caller, resource: Resource, trust_id: str) -> dict[str, Any]:
    trust = service.get_trust(caller, resource, trust_id)
    return _json(request, trust, request.url.path.rstrip("/").rsplit("/", 1)[0])


# -- repository -------------------------------------------------------------------------------

REPO = "/repositories/{workspace}/{repo_slug}/oidc-trusts"


def _repo(caller: Caller, workspace: str, repo_slug: str) -> Resource:
    return resolve(caller, ResourceKind.REPOSITORY, workspace, repo_slug=repo_slug)


@router.post(REPO, status_code=201)
def create_repository_trust(
    request: Request, workspace: str, repo_slug: str, body: TrustCreate, caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Trust a CI issuer's ID tokens for short-lived access tokens of the repository."""
    return _create(request, caller, runtime, _repo(caller, workspace, repo_slug), body)


@router.get(REPO)
def list_repository_trusts(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep, paging: CloudPageDep
) -> dict[str, Any]:
    return _list(request, caller, _repo(caller, workspace, repo_slug), paging)


@router.get(REPO + "/{trust_id}")
def get_repository_trust(
    request: Request, workspace: str, repo_slug: str, trust_id: str, caller: CallerDep
) -> dict[str, Any]:
    return _one(request, caller, _repo(caller, workspace, repo_slug), trust_id)


@router.delete(REPO + "/{trust_id}", status_code=204)
def delete_repository_trust(
    workspace: str, repo_slug: str, trust_id: str, caller: CallerDep
) -> Response:
    """Delete the trust; the access tokens it minted end at once."""
    service.delete_trust(caller, _repo(caller, workspace, repo_slug), trust_id)
    return Response(status_code=204)


# -- project ----------------------------------------------------------------------------------

PROJECT = "/workspaces/{workspace}/projects/{project_key}/oidc-trusts"


def _project(caller: Caller, workspace: str, project_key: str) -> Resource:
    return resolve(caller, ResourceKind.PROJECT, workspace, project_key=project_key)


@router.post(PROJECT, status_code=201)
def create_project_trust(
    request: Request, workspace: str, project_key: str, body: TrustCreate, caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Trust a CI issuer's ID tokens for short-lived access tokens of the project."""
    return _create(request, caller, runtime, _project(caller, workspace, project_key), body)


@router.get(PROJECT)
def list_project_trusts(
    request: Request, workspace: str, project_key: str, caller: CallerDep, paging: CloudPageDep
) -> dict[str, Any]:
    return _list(request, caller, _project(caller, workspace, project_key), paging)


@router.get(PROJECT + "/{trust_id}")
def get_project_trust(
    request: Request, workspace: str, project_key: str, trust_id: str, caller: CallerDep
) -> dict[str, Any]:
    return _one(request, caller, _project(caller, workspace, project_key), trust_id)


@router.delete(PROJECT + "/{trust_id}", status_code=204)
def delete_project_trust(
    workspace: str, project_key: str, trust_id: str, caller: CallerDep
) -> Response:
    """Delete the trust; the access tokens it minted end at once."""
    service.delete_trust(caller, _project(caller, workspace, project_key), trust_id)
    return Response(status_code=204)


# -- workspace --------------------------------------------------------------------------------

WORKSPACE = "/workspaces/{workspace}/oidc-trusts"


def _workspace(caller: Caller, workspace: str) -> Resource:
    return resolve(caller, ResourceKind.WORKSPACE, workspace)


@router.post(WORKSPACE, status_code=201)
def create_workspace_trust(
    request: Request, workspace: str, body: TrustCreate, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Trust a CI issuer's ID tokens for short-lived access tokens of the workspace."""
    return _create(request, caller, runtime, _workspace(caller, workspace), body)


@router.get(WORKSPACE)
def list_workspace_trusts(
    request: Request, workspace: str, caller: CallerDep, paging: CloudPageDep
) -> dict[str, Any]:
    return _list(request, caller, _workspace(caller, workspace), paging)


@router.get(WORKSPACE + "/{trust_id}")
def get_workspace_trust(
    request: Request, workspace: str, trust_id: str, caller: CallerDep
) -> dict[str, Any]:
    return _one(request, caller, _workspace(caller, workspace), trust_id)


@router.delete(WORKSPACE + "/{trust_id}", status_code=204)
def delete_workspace_trust(workspace: str, trust_id: str, caller: CallerDep) -> Response:
    """Delete the trust; the access tokens it minted end at once."""
    service.delete_trust(caller, _workspace(caller, workspace), trust_id)
    return Response(status_code=204)
