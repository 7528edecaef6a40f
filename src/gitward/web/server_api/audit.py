"""The site's audit log for site admins: `GET /rest/audit/1.0/events` (docs/audit.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from gitward.services import audit
from gitward.storage.models import AuditEvent
from gitward.web.deps import CallerDep, ServerPageDep
from gitward.web.pipeline import UnitRoute
from gitward.web.server_api import render

router = APIRouter(route_class=UnitRoute, prefix="/audit/1.0", tags=["audit"])

Filter = Annotated[str | None, Query()]


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
    actor: Filter = None,
    action: Filter = None,
    target: Filter = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: Filter = None,
) -> dict[str, Any]:
    """Every event of the site, oldest first, filtered by `actor`, `action`, `target`, and
    `from`/`to` (ISO 8601 or epoch milliseconds). Site admins only."""
    wanted = audit.audit_filter(actor, action, target, from_, to)
    events = audit.site_events(caller, wanted, render.window(paging))
    return render.page(events, paging, event)
