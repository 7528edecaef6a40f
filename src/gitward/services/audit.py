"""Reading the audit log: the whole site for site admins, a workspace for its owners
(docs/audit.md). Nothing here changes or deletes an event: the log is append-only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gitward.domain.permissions import Action
from gitward.services import validation
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest
from gitward.services.workspaces import find_workspace
from gitward.storage.audit import AuditScope
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import AuditEvent, Workspace

#: Longest filter value looked for (actors, actions and targets are at most 255 characters).
MAX_FILTER = 255


@dataclass(frozen=True)
class AuditFilter:
    """What to list: every field given must match (times inclusive)."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_filter(
    actor: str | None, action: str | None, target: str | None,
    since: str | None, until: str | None,
) -> AuditFilter:
    """The filter of a request's query, or BadRequest naming the parameter.

    `actor` is as recorded (`user:alice`, `token:<kind>:<id>`, `anonymous`, `cli`, …); a bare
    username means `user:<username>`. `from` and `to` are ISO 8601 (a date, or a date and
    time; UTC unless it says otherwise) or milliseconds since the epoch, as Server dates are."""
    if actor and ":" not in actor and actor not in ("anonymous", "cli", "system"):
        actor = f"user:{actor}"
    start, end = _moment(since, "from"), _moment(until, "to")
    if start is not None and end is not None and start > end:
        raise BadRequest("from must not be later than to.")
    return AuditFilter(
        _text(actor, "actor"), _text(action, "action"), _text(target, "target"), start, end
    )


def _text(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if (len(value) > MAX_FILTER or validation.has_lone_surrogate(value)
            or not validation.is_one_line(value)):
        # No event holds control characters (PostgreSQL cannot even compare with a NUL).
        raise BadRequest(f"{name} must be one line of text of at most {MAX_FILTER} characters.")
    return value


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        if value.isdigit() and len(value) <= 15:
            return datetime.fromtimestamp(int(value) / 1000, UTC)
        moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        raise BadRequest(
            f"{name} must be an ISO 8601 date or time, or milliseconds since the epoch: "
            f"{value[:40]!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def site_events(
    caller: Caller, wanted: AuditFilter, window: Window, *, newest_first: bool = False
) -> Page[AuditEvent]:
    """Every event of the site that matches, oldest first (the API's order) or newest first
    (the administration page's). Site admins only."""
    caller.require_site_admin()
    return _page(caller, wanted, window, None, newest_first)


def workspace_scope(caller: Caller, workspace: Workspace) -> AuditScope:
    """A workspace's part of the log: events on the workspace itself (members, consumers,
    workspace tokens), on its projects and repositories (grants, tokens, pushes, …), and the
    activity of its OAuth consumers (tokens issued and revoked; those of a deleted consumer
    stay in the site's log only)."""
    slug = workspace.slug
    consumers = caller.store.oauth.consumers_in(workspace.id, EVERYTHING).items
    return AuditScope(
        targets=(f"workspace:{slug}", *(f"oauth-consumer:{c.id}" for c in consumers)),
        prefixes=(f"project:{slug}/", f"repository:{slug}/"),
    )


def workspace_events(
    caller: Caller, slug: str, wanted: AuditFilter, window: Window
) -> tuple[Workspace, Page[AuditEvent]]:
    """The workspace's events that match, oldest first. Workspace owners only."""
    workspace = find_workspace(caller, slug, Action.WORKSPACE_ADMIN)
    return workspace, _page(caller, wanted, window, workspace_scope(caller, workspace))


def workspace_event(caller: Caller, slug: str, event_id: str) -> tuple[Workspace, AuditEvent]:
    """One event of the workspace's log (404 for any other)."""
    workspace = find_workspace(caller, slug, Action.WORKSPACE_ADMIN)
    number = validation.row_id(event_id)
    event = caller.store.audit.event(number) if number is not None else None
    if event is None or not _in_scope(event.target, workspace_scope(caller, workspace)):
        raise caller.not_found(f"No audit event {event_id[:40]} in workspace {slug}.")
    return workspace, event


def _in_scope(target: str, scope: AuditScope) -> bool:
    return target in scope.targets or target.startswith(scope.prefixes)


def _page(
    caller: Caller, wanted: AuditFilter, window: Window, scope: AuditScope | None,
    newest_first: bool = False,
) -> Page[AuditEvent]:
    return caller.store.audit.page(
        window, actor=wanted.actor, action=wanted.action, target=wanted.target,
        since=wanted.since, until=wanted.until, within=scope, newest_first=newest_first,
    )
