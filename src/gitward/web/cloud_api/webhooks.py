"""Webhooks on the Cloud API, in Bitbucket Cloud's `webhook_subscription` JSON:
`GET|POST R/hooks`, `GET|PUT|DELETE R/hooks/{uid}` (R = /repositories/{workspace}/{repo_slug})
and the same under `/workspaces/{workspace}/hooks`; as an extension, a hook's deliveries
(`GET …/hooks/{uid}/deliveries`) and their redelivery (`POST …/deliveries/{id}/redeliver`).
docs/webhooks.md has the rules."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Request, Response

from gitward.outbound import OutboundRules
from gitward.services import webhooks as service
from gitward.services.webhooks import DeliveryView, Subject
from gitward.storage.models import Webhook
from gitward.web.cloud_api import render
from gitward.web.deps import CallerDep, CloudPageDep, RuntimeDep
from gitward.web.pipeline import UnitRoute

router = APIRouter(route_class=UnitRoute, tags=["webhooks"])

JSON = dict[str, Any]
#: How long a hook's host may take to resolve when it is saved.
BodyDep = Annotated[dict[str, Any], Body()]
R = "/repositories/{workspace}/{repo_slug}/hooks"
W = "/workspaces/{workspace}/hooks"


def _collection(base: str, subject: Subject) -> str:
    if subject.repository is not None:
        r = subject.repository
        return f"{base}/2.0/repositories/{r.workspace.slug}/{r.slug}/hooks"
    assert subject.workspace is not None
    return f"{base}/2.0/workspaces/{subject.workspace.slug}/hooks"


def hook_json(request: Request, subject: Subject, h: Webhook) -> JSON:
    base = render.base_url(request)
    if subject.repository is not None:
        subject_json = render.repository(request, subject.repository)
    else:
        assert subject.workspace is not None
        subject_json = render.workspace(request, subject.workspace)
    return {
        "type": "webhook_subscription",
        "uuid": render.braced(h.uuid),
        "url": h.url,
        "description": h.description,
        "subject_type": subject.kind.value,
        "subject": subject_json,
        "active": h.active,
        "created_at": render.iso(h.created_on),
        "events": list(h.events),
        "secret_set": h.secret_sealed is not None,
        "links": {
            "self": render.link(
                f"{_collection(base, subject)}/{quote(render.braced(h.uuid), safe='')}"
            ),
        },
    }


def delivery_json(v: DeliveryView) -> JSON:
    d = v.delivery
    return {
        "type": "webhook_delivery",
        "uuid": render.braced(d.uuid),
        "event": d.event_key,
        "state": d.state,
        "attempts": d.attempts,
        "created_on": render.iso(d.created_on),
        "next_attempt_on": render.iso(d.next_attempt_at) if d.state == "pending" else None,
        "finished_on": render.iso(d.finished_on),
        "redelivery": d.redelivery_of is not None,
        "attempt_history": [
            {
                "number": a.number,
                "started_on": render.iso(a.started_on),
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "error": a.error,
                "response": a.response,
            }
            for a in v.attempts
        ],
    }


def _rules(runtime: RuntimeDep) -> OutboundRules:
    return service.saving_rules(runtime.settings.outbound_allowed_networks)


# -- one implementation for both subjects ---------------------------------------------------


def _list(request: Request, caller: CallerDep, subject: Subject, paging: CloudPageDep) -> JSON:
    listing = service.hooks(caller, subject, render.window(paging))
    return render.page(request, listing, paging, lambda h: hook_json(request, subject, h))


def _create(request: Request, caller: CallerDep, runtime: RuntimeDep, subject: Subject,
            body: Any) -> JSON:
    given = service.parse_cloud(body, _rules(runtime), creating=True)
    row = service.create(caller, subject, given, runtime.secret_key)
    return hook_json(request, subject, row)


def _update(request: Request, caller: CallerDep, runtime: RuntimeDep, subject: Subject,
            uid: str, body: Any) -> JSON:
    row = service.hook(caller, subject, uid)
    given = service.parse_cloud(body, _rules(runtime), creating=False)
    return hook_json(request, subject, service.update(caller, subject, row, given,
                                                      runtime.secret_key))


def _deliveries(caller: CallerDep, subject: Subject, uid: str, request: Request,
                paging: CloudPageDep) -> JSON:
    row = service.hook(caller, subject, uid)
    listing = service.deliveries(caller, row, render.window(paging))
    return render.page(request, listing, paging, delivery_json)


# -- on a repository --------------------------------------------------------------------


@router.get(R)
def list_repository_hooks(request: Request, workspace: str, repo_slug: str,
                          caller: CallerDep, paging: CloudPageDep) -> JSON:
    """The repository's webhooks (a Cloud page); `webhook` scope, repository admin."""
    return _list(request, caller, service.cloud_repository(caller, workspace, repo_slug), paging)


@router.post(R, status_code=201)
def create_repository_hook(request: Request, workspace: str, repo_slug: str, body: BodyDep,
                           caller: CallerDep, runtime: RuntimeDep) -> JSON:
    """`{"description", "url", "active", "events": [...], "secret"?}`: 201 with the hook."""
    subject = service.cloud_repository(caller, workspace, repo_slug)
    return _create(request, caller, runtime, subject, body)


@router.get(R + "/{uid}")
def get_repository_hook(request: Request, workspace: str, repo_slug: str, uid: str,
                        caller: CallerDep) -> JSON:
    subject = service.cloud_repository(caller, workspace, repo_slug)
    return hook_json(request, subject, service.hook(caller, subject, uid))


@router.put(R + "/{uid}")
def update_repository_hook(request: Request, workspace: str, repo_slug: str, uid: str,
                           body: BodyDep, caller: CallerDep, runtime: RuntimeDep) -> JSON:
    """Change the fields sent; `"secret": null` removes the secret, leaving it out keeps it."""
    subject = service.cloud_repository(caller, workspace, repo_slug)
    return _update(request, caller, runtime, subject, uid, body)


@router.delete(R + "/{uid}", status_code=204)
def delete_repository_hook(workspace: str, repo_slug: str, uid: str,
                           caller: CallerDep) -> Response:
    subject = service.cloud_repository(caller, workspace, repo_slug)
    service.delete(caller, subject, service.hook(caller, subject, uid))
    return Response(status_code=204)


@router.get(R + "/{uid}/deliveries")
def list_repository_hook_deliveries(request: Request, workspace: str, repo_slug: str,
                                    uid: str, caller: CallerDep, paging: CloudPageDep) -> JSON:
    """(Gitward) The hook's deliveries, newest first, with every attempt."""
    subject = service.cloud_repository(caller, workspace, repo_slug)
    return _deliveries(caller, subject, uid, request, paging)


@router.post(R + "/{uid}/deliveries/{delivery}/redeliver", status_code=201)
def redeliver_repository_hook(workspace: str, repo_slug: str, uid: str, delivery: str,
                              caller: CallerDep) -> JSON:
    """(Gitward) Send a delivery's event again, as a new delivery: 201 with it."""
    subject = service.cloud_repository(caller, workspace, repo_slug)
    row = service.hook(caller, subject, uid)
    return delivery_json(service.redeliver(caller, subject, row, delivery))


# -- on a workspace ---------------------------------------------------------------------


@router.get(W)
def list_workspace_hooks(request: Request, workspace: str, caller: CallerDep,
                         paging: CloudPageDep) -> JSON:
    """The workspace's webhooks (its repositories' events); workspace owners."""
    return _list(request, caller, service.cloud_workspace(caller, workspace), paging)


@router.post(W, status_code=201)
def create_workspace_hook(request: Request, workspace: str, body: BodyDep, caller: CallerDep,
                          runtime: RuntimeDep) -> JSON:
    subject = service.cloud_workspace(caller, workspace)
    return _create(request, caller, runtime, subject, body)


@router.get(W + "/{uid}")
def get_workspace_hook(request: Request, workspace: str, uid: str, caller: CallerDep) -> JSON:
    subject = service.cloud_workspace(caller, workspace)
    return hook_json(request, subject, service.hook(caller, subject, uid))


@router.put(W + "/{uid}")
def update_workspace_hook(request: Request, workspace: str, uid: str, body: BodyDep,
                          caller: CallerDep, runtime: RuntimeDep) -> JSON:
    subject = service.cloud_workspace(caller, workspace)
    return _update(request, caller, runtime, subject, uid, body)


@router.delete(W + "/{uid}", status_code=204)
def delete_workspace_hook(workspace: str, uid: str, caller: CallerDep) -> Response:
    subject = service.cloud_workspace(caller, workspace)
    service.delete(caller, subject, service.hook(caller, subject, uid))
    return Response(status_code=204)


@router.get(W + "/{uid}/deliveries")
def list_workspace_hook_deliveries(request: Request, workspace: str, uid: str,
                                   caller: CallerDep, paging: CloudPageDep) -> JSON:
    subject = service.cloud_workspace(caller, workspace)
    return _deliveries(caller, subject, uid, request, paging)


@router.post(W + "/{uid}/deliveries/{delivery}/redeliver", status_code=201)
def redeliver_workspace_hook(workspace: str, uid: str, delivery: str,
                             caller: CallerDep) -> JSON:
    subject = service.cloud_workspace(caller, workspace)
    row = service.hook(caller, subject, uid)
    return delivery_json(service.redeliver(caller, subject, row, delivery))
