"""A repository's webhooks in the web interface (`/{workspace}/{repo}/settings/webhooks`):
list, create, a hook's deliveries with their attempts, redeliver, delete. The hooks are the
Cloud API's (`R/hooks`: Bitbucket Cloud's event names and bodies); the services decide who
may (`webhooks.cloud_repository` needs `webhook:manage`, repository admin)."""

from __future__ import annotations

from starlette.responses import Response

from gitward.services import events
from gitward.services import webhooks as service
from gitward.services.caller import Caller
from gitward.storage.common import Window
from gitward.web.ui.forms import attempt, done, notice
from gitward.web.ui.pages import Pages, View

pages = Pages()

BASE = "/{workspace}/{repo}/settings/webhooks"
PAGE = Window(0, 100)
DELIVERIES = Window(0, 50)


def _base(view: View) -> str:
    return f"/{view.params['workspace']}/{view.params['repo']}/settings/webhooks"


def _subject(view: View, caller: Caller) -> service.Subject:
    return service.cloud_repository(caller, view.params["workspace"], view.params["repo"])


def _list(view: View, caller: Caller, status: int = 200, error: str = "") -> Response:
    subject = _subject(view, caller)
    rows = service.hooks(caller, subject, PAGE).items
    repo = subject.repository
    assert repo is not None
    return view.render(
        caller, "webhooks.html", status, title=f"Webhooks of {repo.workspace.slug}/{repo.slug}",
        rows=rows, base=_base(view), back=f"/{repo.workspace.slug}/{repo.slug}",
        back_label=f"{repo.workspace.slug}/{repo.slug}", events=service.CLOUD_EVENTS,
        error=error, notice=notice(view), form=view.form,
    )


@pages.get(BASE)
def hook_list(view: View, caller: Caller) -> Response:
    return _list(view, caller)


@pages.post(BASE)
def hook_create(view: View, caller: Caller) -> Response:
    subject = _subject(view, caller)
    body = {
        "description": view.field("description"),
        "url": view.field("url"),
        "active": view.field("active") == "on",
        "events": view.fields("event"),
        "secret": view.raw("secret") or None,
    }
    settings = view.runtime.settings
    row = attempt(
        lambda: service.create(
            caller, subject,
            service.parse_cloud(body, service.saving_rules(settings.outbound_allowed_networks),
                                creating=True),
            view.runtime.secret_key,
        ),
        lambda e: _list(view, caller, e.status, e.message),
    )
    return done(f"{_base(view)}/{row.uuid}", "created")


@pages.get(BASE + "/{uid}")
def hook_page(view: View, caller: Caller) -> Response:
    subject = _subject(view, caller)
    row = service.hook(caller, subject, view.params["uid"])
    listing = service.deliveries(caller, row, DELIVERIES)
    repo = subject.repository
    assert repo is not None
    return view.render(
        caller, "webhook.html", title=f"Webhook {row.description or row.url}", hook=row,
        deliveries=listing.items, more=listing.has_more, base=_base(view),
        back=_base(view), back_label=f"Webhooks of {repo.workspace.slug}/{repo.slug}",
        notice=notice(view), cloud=events.CLOUD,
    )


@pages.post(BASE + "/{uid}/delete")
def hook_delete(view: View, caller: Caller) -> Response:
    subject = _subject(view, caller)
    service.delete(caller, subject, service.hook(caller, subject, view.params["uid"]))
    return done(_base(view), "removed")


@pages.post(BASE + "/{uid}/deliveries/{delivery}/redeliver")
def hook_redeliver(view: View, caller: Caller) -> Response:
    subject = _subject(view, caller)
    row = service.hook(caller, subject, view.params["uid"])
    service.redeliver(caller, subject, row, view.params["delivery"])
    return done(f"{_base(view)}/{row.uuid}", "redelivered")
