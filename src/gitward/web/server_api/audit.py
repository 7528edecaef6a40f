"""The site's audit log for site admins: `GET /rest/audit/1.0/events` (docs/audit.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gitward.services import audit
from gitward.storage.models import AuditEvent
from gitward.web.deps import AuditFilterDep, CallerDep, ServerPageDep
from gitward.web.pipeline import UnitRoute
from gitward.web.server_api import render

router = APIRouter(route_class=UnitRoute, prefix="/audit/1.0", tags=["audit"])



def event(e: AuditEvent) -> dict[str, Any]:
    """An event in Server's JSON (times in milliseconds since the epoch)."""
    return {
        "id": e.id,
        "timestamp": render.millis(e.created_on),
        "action": e.action,
        "actor": e.actor,
        "target": e.target,
        "clientIp": e.client_ip,
        "details": e.details,
    }


@router.get("/events")
def list_events(
    caller: CallerDep,
    paging: ServerPageDep,
    wanted: AuditFilterDep,
) -> dict[str, Any]:
    """Every event of the site, oldest first, filtered by `actor`, `action`, `target`, and
    `from`/`to` (ISO 8601 or epoch milliseconds). Site admins only."""
    events = audit.site_events(caller, wanted, render.window(paging))
    return render.page(events, paging, event)
