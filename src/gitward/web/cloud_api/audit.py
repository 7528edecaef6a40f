"""A workspace's audit log for its owners: `GET /2.0/workspaces/{workspace}/audit`
(Gitward extension, docs/audit.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gitward.services import audit
from gitward.storage.models import AuditEvent, Workspace
from gitward.web.cloud_api import render
from gitward.web.deps import AuditFilterDep, CallerDep, CloudPageDep
from gitward.web.pipeline import UnitRoute

router = APIRouter(
    route_class=UnitRoute, prefix="/workspaces/{workspace}/audit", tags=["audit"]
)



def event(request: Request, ws: Workspace, e: AuditEvent) -> dict[str, Any]:
    base = render.base_url(request)
    return {
        "type": "audit_event",
        "id": e.id,
        "created_on": render.iso(e.created_on),
        "action": e.action,
        "actor": e.actor,
        "target": e.target,
        "client_ip": e.client_ip,
        "details": e.details,
        "links": {"self": render.link(f"{base}/2.0/workspaces/{ws.slug}/audit/{e.id}")},
    }


@router.get("")
def list_events(
    request: Request,
    workspace: str,
    caller: CallerDep,
    paging: CloudPageDep,
    wanted: AuditFilterDep,
) -> dict[str, Any]:
    """The workspace's events, oldest first, filtered by `actor`, `action`, `target`, and
    `from`/`to` (ISO 8601 or epoch milliseconds). Workspace owners only."""
    ws, events = audit.workspace_events(caller, workspace, wanted, render.window(paging))
    return render.page(request, events, paging, lambda e: event(request, ws, e))


@router.get("/{event_id}")
def get_event(
    request: Request, workspace: str, event_id: str, caller: CallerDep
) -> dict[str, Any]:
    ws, found = audit.workspace_event(caller, workspace, event_id)
    return event(request, ws, found)
