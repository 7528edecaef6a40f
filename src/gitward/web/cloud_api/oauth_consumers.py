"""OAuth consumers of a workspace (Gitward's REST for Bitbucket Cloud's consumer settings).

Workspace owners, in person. The secret is in the creation (and regeneration) response only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from gitward.services import oauth_consumers as service
from gitward.storage.models import OAuthConsumer, Workspace
from gitward.web.cloud_api import render
from gitward.web.deps import CallerDep, CloudPageDep, RuntimeDep
from gitward.web.pipeline import UnitRoute

router = APIRouter(route_class=UnitRoute, tags=["oauth consumers"])

PATH = "/workspaces/{workspace}/oauth-consumers"


class ConsumerCreate(BaseModel):
    """Types are checked by the service so that each problem gets its own message."""

    model_config = ConfigDict(extra="ignore")
    name: Any = None
    description: Any = None
    callback_url: Any = None
    is_private: Any = None
    scopes: Any = None


def _json(
    request: Request, workspace: Workspace, c: OAuthConsumer, secret: str | None = None
) -> dict[str, Any]:
    base = render.base_url(request)
    body: dict[str, Any] = {
        "type": "oauth_consumer",
        "id": c.id,
        "uuid": render.braced(c.uuid),
        "key": c.key,
        "name": c.name,
        "description": c.description,
        "callback_url": c.callback_url,
        "is_private": c.is_private,
        "scopes": c.scopes.split(),
        "created_on": render.iso(c.created_on),
        "created_by": {"type": "user", "username": c.created_by_name},
        "workspace": {"type": "workspace", "slug": workspace.slug},
        "links": {
            "self": render.link(f"{base}/2.0/workspaces/{workspace.slug}/oauth-consumers/{c.id}")
        },
    }
    if secret is not None:
        body["secret"] = secret
    return body


@router.post(PATH, status_code=201)
def create_consumer(
    request: Request, workspace: str, body: ConsumerCreate, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    ws = service.workspace_for(caller, workspace)
    created = service.create_consumer(
        caller,
        runtime.oauth,
        ws,
        name=body.name,
        description=body.description,
        callback=body.callback_url,
        is_private=body.is_private,
        scopes=body.scopes,
    )
    return _json(request, ws, created.consumer, created.secret)


@router.get(PATH)
def list_consumers(
    request: Request, workspace: str, caller: CallerDep, paging: CloudPageDep
) -> dict[str, Any]:
    ws = service.workspace_for(caller, workspace)
    consumers = service.list_consumers(caller, ws, render.window(paging))
    return render.page(request, consumers, paging, lambda c: _json(request, ws, c))


@router.get(PATH + "/{consumer_id}")
def get_consumer(
    request: Request, workspace: str, consumer_id: str, caller: CallerDep
) -> dict[str, Any]:
    ws = service.workspace_for(caller, workspace)
    return _json(request, ws, service.find_consumer(caller, ws, consumer_id))


class ConsumerUpdate(ConsumerCreate):
    """The fields to change; those left out stay as they are (unknown ones are refused)."""

    model_config = ConfigDict(extra="allow")


@router.put(PATH + "/{consumer_id}")
def update_consumer(
    request: Request, workspace: str, consumer_id: str, body: ConsumerUpdate, caller: CallerDep
) -> dict[str, Any]:
    """Change a consumer. Dropping a scope revokes every code and token it was issued; making
    it public ends its client credentials tokens; a new callback URL voids pending codes."""
    ws = service.workspace_for(caller, workspace)
    consumer = service.find_consumer(caller, ws, consumer_id)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    changes.update(body.model_extra or {})
    service.update_consumer(caller, ws, consumer, changes)
    return _json(request, ws, consumer)


@router.delete(PATH + "/{consumer_id}", status_code=204)
def delete_consumer(workspace: str, consumer_id: str, caller: CallerDep) -> Response:
    ws = service.workspace_for(caller, workspace)
    service.delete_consumer(caller, ws, service.find_consumer(caller, ws, consumer_id))
    return Response(status_code=204)


@router.post(PATH + "/{consumer_id}/secret")
def regenerate_secret(
    request: Request, workspace: str, consumer_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    ws = service.workspace_for(caller, workspace)
    consumer = service.find_consumer(caller, ws, consumer_id)
    secret = service.regenerate_secret(caller, runtime.oauth, ws, consumer)
    return _json(request, ws, consumer, secret)
