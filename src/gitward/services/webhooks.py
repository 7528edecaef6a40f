"""Webhooks: hooks on a repository, a workspace (Bitbucket Cloud) or a project (Bitbucket
Server), their deliveries and redelivery (docs/webhooks.md).

Each API manages the hooks it created (`surface`): that decides the event names a hook may
subscribe to and the format of what it receives. Managing needs `WEBHOOK_MANAGE` on a
repository (repository admin; the `webhook` scope), `PROJECT_WEBHOOK_MANAGE` on a project
(project admin) and `WORKSPACE_WEBHOOK_MANAGE` on a workspace (its owners). The URL is
checked by the outbound rule (outbound.py) when saved and again before every delivery; the
secret is sealed with the server secret and never shown.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gitward.credentials.sealing import Sealer
from gitward.domain.permissions import Action
from gitward.outbound import OutboundRefused, OutboundRules, bounded_resolver
from gitward.services import events, repositories, site, validation, workspaces
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, NotFound
from gitward.storage.common import Page, Window
from gitward.storage.models import (
    Project,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    Workspace,
    utcnow,
)
from gitward.storage.views import RepositoryView

#: The events a hook made through each API may subscribe to.
CLOUD_EVENTS: tuple[str, ...] = (
    "repo:push",
    "repo:commit_status_created",
    "repo:commit_status_updated",
    "pullrequest:created",
    "pullrequest:updated",
    "pullrequest:approved",
    "pullrequest:unapproved",
    "pullrequest:changes_request_created",
    "pullrequest:changes_request_removed",
    "pullrequest:fulfilled",
    "pullrequest:rejected",
    "pullrequest:comment_created",
    "pullrequest:comment_updated",
    "pullrequest:comment_deleted",
)
SERVER_EVENTS: tuple[str, ...] = (
    "repo:refs_changed",
    "pr:opened",
    "pr:modified",
    "pr:from_ref_updated",
    "pr:merged",
    "pr:declined",
    "pr:deleted",
    "pr:reviewer:approved",
    "pr:reviewer:unapproved",
    "pr:reviewer:needs_work",
    "pr:comment:added",
    "pr:comment:edited",
    "pr:comment:deleted",
)
#: The event of Bitbucket Server's test call (`POST …/webhooks/test`).
PING = "diagnostics:ping"

MAX_DESCRIPTION = 255
MAX_SECRET = 1024
MAX_EVENTS = 64


class SubjectKind(StrEnum):
    REPOSITORY = "repository"
    WORKSPACE = "workspace"
    PROJECT = "project"


@dataclass(frozen=True)
class Subject:
    """What hooks are on, once the caller may manage its hooks (made by the functions below
    only)."""

    kind: SubjectKind
    surface: str
    repository: RepositoryView | None = None
    workspace: Workspace | None = None
    project: Project | None = None

    @property
    def ids(self) -> dict[str, int | None]:
        return {
            "repository_id": self.repository.id if self.repository is not None else None,
            "workspace_id": self.workspace.id if self.workspace is not None else None,
            "project_id": self.project.id if self.project is not None else None,
        }

    @property
    def target(self) -> str:
        if self.repository is not None:
            return f"repository:{self.repository.workspace.slug}/{self.repository.slug}"
        if self.project is not None:
            return f"project:{self.project.workspace.slug}/{self.project.key}"
        assert self.workspace is not None
        return f"workspace:{self.workspace.slug}"


def cloud_repository(caller: Caller, workspace: str, slug: str) -> Subject:
    view = repositories.read_repository(caller, workspace, slug, Action.WEBHOOK_MANAGE)
    return Subject(SubjectKind.REPOSITORY, events.CLOUD, repository=view)


def cloud_workspace(caller: Caller, workspace: str) -> Subject:
    found = workspaces.find_workspace(caller, workspace, Action.WORKSPACE_WEBHOOK_MANAGE)
    return Subject(SubjectKind.WORKSPACE, events.CLOUD, workspace=found)


def server_repository(caller: Caller, key: str, slug: str) -> Subject:
    view = site.read_repository(caller, key, slug, Action.WEBHOOK_MANAGE)
    return Subject(SubjectKind.REPOSITORY, events.SERVER, repository=view)


def server_project(caller: Caller, key: str) -> Subject:
    project = site.find_project(caller, key, Action.PROJECT_WEBHOOK_MANAGE)
    return Subject(SubjectKind.PROJECT, events.SERVER, project=project)


# -- input ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HookInput:
    """A validated hook from a body; a field of None was not sent (an update keeps it)."""

    url: str | None = None
    description: str | None = None
    events: tuple[str, ...] | None = None
    active: bool | None = None
    # `secret_sent`: the body set the secret (to `secret`, or None/"" to remove it).
    secret_sent: bool = False
    secret: str | None = field(default=None, repr=False)


def _events(value: object, surface: str) -> tuple[str, ...]:
    known = CLOUD_EVENTS if surface == events.CLOUD else SERVER_EVENTS
    if not isinstance(value, list) or not value:
        raise BadRequest("events must be a non-empty list of event names.")
    if len(value) > MAX_EVENTS:
        raise BadRequest(f"events must list at most {MAX_EVENTS} names.")
    names: list[str] = []
    unknown: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise BadRequest("events must be a list of strings.")
        if item not in known:
            unknown.append(item[:80])
        elif item not in names:
            names.append(item)
    if unknown:
        raise BadRequest(
            f"Unknown event(s): {', '.join(repr(u) for u in unknown)}. "
            f"Known events: {', '.join(known)}."
        )
    return tuple(names)


def _bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"{what} must be true or false.")
    return value


def _secret(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest("The secret must be a string.")
    if len(value) > MAX_SECRET:
        raise BadRequest(f"The secret must be at most {MAX_SECRET} characters long.")
    if "\x00" in value or validation.has_lone_surrogate(value):
        raise BadRequest("The secret must be text without NUL characters.")
    return value


def _url(value: object, rules: OutboundRules) -> str:
    """The URL, checked by the outbound rule now (a clear 400 with the reason)."""
    if value is None or value == "":
        raise BadRequest("A url is required.")
    try:
        rules.check(value)
    except OutboundRefused as refused:
        raise BadRequest(f"The url cannot be used: {refused.message}.") from None
    assert isinstance(value, str)
    return value


def _object(body: object) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise BadRequest("The body must be a JSON object.")
    return body


def parse_cloud(body: object, rules: OutboundRules, *, creating: bool) -> HookInput:
    """Cloud's `{"description", "url", "active", "events", "secret"}`."""
    body = _object(body)
    if creating or "url" in body:
        url: str | None = _url(body.get("url"), rules)
    else:
        url = None
    description = body.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise BadRequest("The description must be a string.")
        description = validation.description(description, MAX_DESCRIPTION).strip()
    hook_events = (
        _events(body.get("events"), events.CLOUD) if creating or "events" in body else None
    )
    active = _bool(body["active"], "active") if body.get("active") is not None else None
    return HookInput(
        url, description if description is not None else ("" if creating else None),
        hook_events, True if creating and active is None else active,
        "secret" in body, _secret(body.get("secret")),
    )


def parse_server(body: object, rules: OutboundRules, *, creating: bool) -> HookInput:
    """Server's `{"name", "url", "active", "events", "configuration": {"secret"}}`."""
    body = _object(body)
    name: str | None = None
    if creating or "name" in body:
        name = validation.required_text(body.get("name"), "webhook name", MAX_DESCRIPTION)
    url = _url(body.get("url"), rules) if creating or "url" in body else None
    hook_events = (
        _events(body.get("events"), events.SERVER) if creating or "events" in body else None
    )
    active = _bool(body["active"], "active") if body.get("active") is not None else None
    configuration = body.get("configuration")
    secret_sent = False
    secret: str | None = None
    if configuration is not None:
        if not isinstance(configuration, Mapping):
            raise BadRequest("configuration must be an object.")
        if "secret" in configuration:
            secret_sent, secret = True, _secret(configuration.get("secret"))
    return HookInput(
        url, name, hook_events, True if creating and active is None else active,
        secret_sent, secret,
    )


# -- hooks ------------------------------------------------------------------------------


#: How long the name of a URL being saved may take to resolve: it is checked inside the
#: request's unit of work, and a slow name server must not hold the database.
RESOLVE_SECONDS = 3.0


def saving_rules(allowed_networks: Sequence[str]) -> OutboundRules:
    """The outbound rule for a URL saved in a unit of work (its name resolved in at most
    RESOLVE_SECONDS)."""
    return OutboundRules(allowed_networks, bounded_resolver(RESOLVE_SECONDS))


@functools.lru_cache(maxsize=4)
def sealer(secret_key: bytes) -> Sealer:
    """What seals hook secrets (credentials/sealing.py), per server secret."""
    return Sealer(secret_key, "webhook-secret")


def hooks(caller: Caller, subject: Subject, window: Window) -> Page[Webhook]:
    return caller.store.webhooks.hooks_on(subject.surface, window, **subject.ids)


def hook(caller: Caller, subject: Subject, uid: str) -> Webhook:
    """One hook of the subject, by uuid (Cloud, braces optional) or id (Server); 404 else."""
    found: Webhook | None = None
    if subject.surface == events.CLOUD:
        uuid = uid.strip().removeprefix("{").removesuffix("}").lower()
        if len(uuid) == 36:
            found = caller.store.webhooks.by_uuid(uuid)
    else:
        number = validation.row_id(uid)
        if number is not None:
            found = caller.store.webhooks.by_id(number)
    ids = subject.ids
    if (
        found is None
        or found.surface != subject.surface
        or found.repository_id != ids["repository_id"]
        or found.workspace_id != ids["workspace_id"]
        or found.project_id != ids["project_id"]
    ):
        raise NotFound(f"No webhook {uid[:80]!r} here.")
    return found


def create(caller: Caller, subject: Subject, given: HookInput, secret_key: bytes) -> Webhook:
    assert given.url is not None and given.events is not None
    now = utcnow()
    row = Webhook(
        surface=subject.surface, url=given.url, description=given.description or "",
        events=list(given.events), active=given.active is not False,
        secret_sealed=sealer(secret_key).seal(given.secret) if given.secret else None,
        created_by=caller.actor, created_on=now, updated_on=now, **subject.ids,
    )
    caller.store.add(row)
    caller.store.flush()
    caller.audit("webhook.create", target=subject.target, webhook=row.uuid, url=row.url,
                 events=row.events)
    return row


def update(
    caller: Caller, subject: Subject, row: Webhook, given: HookInput, secret_key: bytes
) -> Webhook:
    if given.url is not None:
        row.url = given.url
    if given.description is not None:
        row.description = given.description
    if given.events is not None:
        row.events = list(given.events)
    if given.active is not None:
        row.active = given.active
    if given.secret_sent:
        row.secret_sealed = sealer(secret_key).seal(given.secret) if given.secret else None
    row.updated_on = utcnow()
    caller.audit("webhook.update", target=subject.target, webhook=row.uuid, url=row.url,
                 events=row.events, active=row.active)
    return row


def delete(caller: Caller, subject: Subject, row: Webhook) -> None:
    caller.audit("webhook.delete", target=subject.target, webhook=row.uuid, url=row.url)
    caller.store.delete(row)


# -- deliveries -------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryView:
    delivery: WebhookDelivery
    attempts: Sequence[WebhookAttempt]


def deliveries(caller: Caller, row: Webhook, window: Window) -> Page[DeliveryView]:
    """A hook's deliveries, newest first, each with its attempts."""
    page = caller.store.webhooks.deliveries_of(row.id, window)
    attempts = caller.store.webhooks.attempts_of([d.id for d in page.items])
    return Page(
        [DeliveryView(d, attempts[d.id]) for d in page.items], page.has_more, page.total
    )


def redeliver(caller: Caller, subject: Subject, row: Webhook, uid: str) -> DeliveryView:
    """Send a delivery's event again: a new delivery of the same body, queued after the
    hook's others (a new request uuid; the original and its attempts stay as they are)."""
    uuid = uid.strip().removeprefix("{").removesuffix("}").lower()
    original = caller.store.webhooks.delivery(row.id, uuid) if len(uuid) == 36 else None
    if original is None:
        raise NotFound(f"No delivery {uid[:80]!r} of this webhook.")
    again = WebhookDelivery(
        hook_id=row.id, event_key=original.event_key, body=original.body,
        redelivery_of=original.id,
    )
    caller.store.add(again)
    caller.store.flush()
    caller.store.emitted = True
    caller.audit("webhook.redeliver", target=subject.target, webhook=row.uuid,
                 delivery=original.uuid)
    return DeliveryView(again, [])
