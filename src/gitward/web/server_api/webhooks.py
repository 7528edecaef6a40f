"""Webhooks on the Server API, in Bitbucket Server's JSON and paging:
`GET|POST P/webhooks`, `GET|PUT|DELETE P/webhooks/{id}` (P = /api/1.0/projects/{key}/repos/
{slug}) and the same on projects (`/api/1.0/projects/{key}/webhooks`); the test call
`POST P/webhooks/test?url=…`, which posts `diagnostics:ping` there at once; as an extension,
a hook's deliveries (`GET …/webhooks/{id}/deliveries`) and their redelivery
(`POST …/deliveries/{id}/redeliver`). docs/webhooks.md has the rules."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Query, Request, Response

from gitward.outbound import OutboundRules
from gitward.services import events
from gitward.services import webhooks as service
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest
from gitward.services.webhooks import DeliveryView, Subject
from gitward.storage.models import Webhook, new_uuid, utcnow
from gitward.web.deps import CallerDep, RuntimeDep, ServerPageDep
from gitward.web.hosts import linking
from gitward.web.pipeline import Ingress, UnitRoute, pipeline_of
from gitward.web.server_api import render
from gitward.worker import webhooks as worker

router = APIRouter(route_class=UnitRoute, tags=["webhooks"])

JSON = dict[str, Any]
#: How long a hook's host may take to resolve when it is saved.
BodyDep = Annotated[dict[str, Any], Body()]
P = "/api/1.0/projects/{project_key}/repos/{slug}/webhooks"
PROJECT = "/api/1.0/projects/{project_key}/webhooks"


def hook_json(subject: Subject, h: Webhook) -> JSON:
    """The secret (`configuration.secret`) is write-only: never answered."""
    return {
        "id": h.id,
        "name": h.description,
        "createdDate": render.millis(h.created_on),
        "updatedDate": render.millis(h.updated_on),
        "events": list(h.events),
        "configuration": {},
        "url": h.url,
        "active": h.active,
        "scopeType": subject.kind.value,
    }


def delivery_json(v: DeliveryView) -> JSON:
    d = v.delivery
    return {
        "id": d.uuid,
        "eventKey": d.event_key,
        "state": d.state.upper(),
        "attempts": d.attempts,
        "createdDate": render.millis(d.created_on),
        "nextAttemptDate": render.millis(d.next_attempt_at) if d.state == "pending" else None,
        "finishedDate": render.millis(d.finished_on),
        "redelivery": d.redelivery_of is not None,
        "attemptHistory": [
            {
                "number": a.number,
                "startedDate": render.millis(a.started_on),
                "duration": a.duration_ms,
                "statusCode": a.status_code,
                "error": a.error,
                "body": a.response,
            }
            for a in v.attempts
        ],
    }


def _rules(runtime: RuntimeDep) -> OutboundRules:
    return service.saving_rules(runtime.settings.outbound_allowed_networks)


def _list(caller: Caller, subject: Subject, paging: ServerPageDep) -> JSON:
    listing = service.hooks(caller, subject, render.window(paging))
    return render.page(listing, paging, lambda h: hook_json(subject, h))


def _create(caller: Caller, runtime: RuntimeDep, subject: Subject, body: Any) -> JSON:
    given = service.parse_server(body, _rules(runtime), creating=True)
    return hook_json(subject, service.create(caller, subject, given, runtime.secret_key))


def _update(caller: Caller, runtime: RuntimeDep, subject: Subject, hook_id: str,
            body: Any) -> JSON:
    row = service.hook(caller, subject, hook_id)
    given = service.parse_server(body, _rules(runtime), creating=False)
    return hook_json(subject, service.update(caller, subject, row, given, runtime.secret_key))


def _deliveries(caller: Caller, subject: Subject, hook_id: str, paging: ServerPageDep) -> JSON:
    row = service.hook(caller, subject, hook_id)
    return render.page(service.deliveries(caller, row, render.window(paging)), paging,
                       delivery_json)


def _redeliver(caller: Caller, subject: Subject, hook_id: str, delivery: str) -> JSON:
    row = service.hook(caller, subject, hook_id)
    return delivery_json(service.redeliver(caller, subject, row, delivery))


# -- on a repository --------------------------------------------------------------------


@router.get(P)
def list_repository_webhooks(project_key: str, slug: str, caller: CallerDep,
                             paging: ServerPageDep) -> JSON:
    """The repository's webhooks; REPO_ADMIN."""
    return _list(caller, service.server_repository(caller, project_key, slug), paging)


@router.post(P, status_code=201)
def create_repository_webhook(project_key: str, slug: str, body: BodyDep, caller: CallerDep,
                              runtime: RuntimeDep) -> JSON:
    """`{"name", "url", "events": [...], "active"?, "configuration": {"secret"?}}`: 201."""
    subject = service.server_repository(caller, project_key, slug)
    return _create(caller, runtime, subject, body)


@router.post(P + "/test")
async def test_repository_webhook(
    request: Request, project_key: str, slug: str,
    url: Annotated[str, Query(max_length=2000)],
) -> JSON:
    """Post `diagnostics:ping` to `url` now (checked by the outbound rule), and answer what
    came back: `{"request": {"url", "method", "headers"}, "response": {"statusCode", "body"}}`
    or, when no answer came, `{"request", "error"}`. REPO_ADMIN. Nothing is stored."""
    pipeline = pipeline_of(request)
    runtime = pipeline.runtime

    def check(caller: Caller) -> bytes:
        service.server_repository(caller, project_key, slug)
        actor = caller.user
        body: JSON = {
            "eventKey": service.PING,
            "date": utcnow().isoformat(timespec="seconds"),
            "actor": render.user(linking(caller.base_url or ""), actor) if actor else None,
            "test": True,
        }
        return orjson.dumps(body)

    if not url.strip():
        raise BadRequest("A url is required.")
    body = await pipeline.call(Ingress.of(request, write=False), check)
    headers = worker.headers_for(events.SERVER, service.PING, "", new_uuid(), 1, body, None)
    rules = _rules(runtime)
    outcome = await asyncio.to_thread(
        worker.post, rules, url, body, headers, runtime.settings.webhook_timeout_seconds
    )
    answer: JSON = {"request": {"url": url, "method": "POST", "headers": headers}}
    if outcome.status is None:
        answer["error"] = outcome.error
    else:
        answer["response"] = {"statusCode": outcome.status, "body": outcome.response}
    return answer


@router.get(P + "/{hook_id}")
def get_repository_webhook(project_key: str, slug: str, hook_id: str,
                           caller: CallerDep) -> JSON:
    subject = service.server_repository(caller, project_key, slug)
    return hook_json(subject, service.hook(caller, subject, hook_id))


@router.put(P + "/{hook_id}")
def update_repository_webhook(project_key: str, slug: str, hook_id: str, body: BodyDep,
                              caller: CallerDep, runtime: RuntimeDep) -> JSON:
    """Change the fields sent; `configuration.secret` "" removes the secret, leaving it out
    keeps it."""
    subject = service.server_repository(caller, project_key, slug)
    return _update(caller, runtime, subject, hook_id, body)


@router.delete(P + "/{hook_id}", status_code=204)
def delete_repository_webhook(project_key: str, slug: str, hook_id: str,
                              caller: CallerDep) -> Response:
    subject = service.server_repository(caller, project_key, slug)
    service.delete(caller, subject, service.hook(caller, subject, hook_id))
    return Response(status_code=204)


@router.get(P + "/{hook_id}/deliveries")
def list_repository_webhook_deliveries(project_key: str, slug: str, hook_id: str,
                                       caller: CallerDep, paging: ServerPageDep) -> JSON:
    """(Gitward) The webhook's deliveries, newest first, with every attempt."""
    subject = service.server_repository(caller, project_key, slug)
    return _deliveries(caller, subject, hook_id, paging)


@router.post(P + "/{hook_id}/deliveries/{delivery}/redeliver", status_code=201)
def redeliver_repository_webhook(project_key: str, slug: str, hook_id: str, delivery: str,
                                 caller: CallerDep) -> JSON:
    """(Gitward) Send a delivery's event again, as a new delivery: 201 with it."""
    subject = service.server_repository(caller, project_key, slug)
    return _redeliver(caller, subject, hook_id, delivery)


# -- on a project -----------------------------------------------------------------------


@router.get(PROJECT)
def list_project_webhooks(project_key: str, caller: CallerDep, paging: ServerPageDep) -> JSON:
    """The project's webhooks (its repositories' events); PROJECT_ADMIN."""
    return _list(caller, service.server_project(caller, project_key), paging)


@router.post(PROJECT, status_code=201)
def create_project_webhook(project_key: str, body: BodyDep, caller: CallerDep,
                           runtime: RuntimeDep) -> JSON:
    subject = service.server_project(caller, project_key)
    return _create(caller, runtime, subject, body)


@router.get(PROJECT + "/{hook_id}")
def get_project_webhook(project_key: str, hook_id: str, caller: CallerDep) -> JSON:
    subject = service.server_project(caller, project_key)
    return hook_json(subject, service.hook(caller, subject, hook_id))


@router.put(PROJECT + "/{hook_id}")
def update_project_webhook(project_key: str, hook_id: str, body: BodyDep, caller: CallerDep,
                           runtime: RuntimeDep) -> JSON:
    subject = service.server_project(caller, project_key)
    return _update(caller, runtime, subject, hook_id, body)


@router.delete(PROJECT + "/{hook_id}", status_code=204)
def delete_project_webhook(project_key: str, hook_id: str, caller: CallerDep) -> Response:
    subject = service.server_project(caller, project_key)
    service.delete(caller, subject, service.hook(caller, subject, hook_id))
    return Response(status_code=204)


@router.get(PROJECT + "/{hook_id}/deliveries")
def list_project_webhook_deliveries(project_key: str, hook_id: str, caller: CallerDep,
                                    paging: ServerPageDep) -> JSON:
    subject = service.server_project(caller, project_key)
    return _deliveries(caller, subject, hook_id, paging)


@router.post(PROJECT + "/{hook_id}/deliveries/{delivery}/redeliver", status_code=201)
def redeliver_project_webhook(project_key: str, hook_id: str, delivery: str,
                              caller: CallerDep) -> JSON:
    subject = service.server_project(caller, project_key)
    return _redeliver(caller, subject, hook_id, delivery)
