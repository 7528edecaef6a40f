"""Settings of a workspace, project or repository: access tokens, members and user
permissions. The services decide who may (`resource_tokens.resolve`, `workspaces.set_member`,
`repositories.set_repository_grant`, …)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response

from gitward.credentials.resource import SPECS
from gitward.domain.permissions import (
    PROJECT_GRANTS,
    REPOSITORY_GRANTS,
    Action,
    ResourceKind,
    Scope,
)
from gitward.services import (
    credential_usage,
    oauth_consumers,
    projects,
    repositories,
    resource_tokens,
    workspaces,
)
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, NotFound, ServiceError
from gitward.storage.common import Page, Window
from gitward.storage.models import OAuthConsumer, ProjectGrant, RepositoryGrant
from gitward.web.pipeline import Rollback
from gitward.web.ui.forms import attempt, done, is_fresh, notice, require_fresh
from gitward.web.ui.pages import Pages, View

pages = Pages()

PAGE = Window(0, 100)


@dataclass(frozen=True)
class Place:
    kind: ResourceKind
    workspace: str
    project: str | None = None
    repo: str | None = None

    @classmethod
    def of(cls, kind: ResourceKind, view: View) -> Place:
        p = view.params
        return cls(kind, p["workspace"], p.get("project"), p.get("repo"))

    @property
    def path(self) -> str:
        if self.kind is ResourceKind.REPOSITORY:
            return f"/{self.workspace}/{self.repo}/settings/access-tokens"
        if self.kind is ResourceKind.PROJECT:
            return f"/{self.workspace}/projects/{self.project}/settings/access-tokens"
        return f"/{self.workspace}/settings/access-tokens"

    @property
    def label(self) -> str:
        if self.kind is ResourceKind.REPOSITORY:
            return f"{self.workspace}/{self.repo}"
        if self.kind is ResourceKind.PROJECT:
            return f"{self.workspace} project {self.project}"
        return self.workspace

    def resolve(self, caller: Caller) -> resource_tokens.Resource:
        return resource_tokens.resolve(caller, self.kind, self.workspace, self.project,
                                       self.repo)


def _expires_on(view: View) -> str | None:
    raw = view.field("expires_on")
    if not raw:
        return None
    if len(raw) != 10 or raw[4] != "-" or raw[7] != "-":
        raise BadRequest("Give the expiry as a date (YYYY-MM-DD), or none.")
    return raw + "T00:00:00Z"


def _tokens(view: View, caller: Caller, place: Place, status: int = 200, *, error: str = "",
            secret: str = "", secret_name: str = "") -> Response:
    resource = place.resolve(caller)
    user = caller.require_user()
    rows = resource_tokens.list_tokens(caller, resource, PAGE).items
    scopes = sorted(s.value for s in SPECS[place.kind].allowed_scopes)
    return view.render(
        caller, "access_tokens.html", status, title=f"Access tokens of {place.label}",
        place=place, rows=rows, scopes=scopes, error=error, notice=notice(view),
        usage={t.id: credential_usage.resource_token_report(caller.store, t) for t in rows},
        secret=secret, secret_name=secret_name, fresh=is_fresh(view, caller),
        two_step=user.totp_enabled, form=view.form, kind=place.kind.value,
    )


def _token_pages(kind: ResourceKind, base: str) -> None:
    def show(view: View, caller: Caller) -> Response:
        return _tokens(view, caller, Place.of(kind, view))

    def failed(view: View, caller: Caller, message: str) -> Response:
        return _tokens(view, caller, Place.of(kind, view), 401, error=message)

    def create(view: View, caller: Caller) -> Response:
        place = Place.of(kind, view)
        resource = place.resolve(caller)
        stale = require_fresh(view, caller)
        if stale is not None:
            raise Rollback(_tokens(view, caller, place, 403, error=stale))
        created = attempt(
            lambda: resource_tokens.create_token(
                caller, view.runtime.resource_tokens, resource, name=view.field("name"),
                scopes=view.fields("scope"), expires_on=_expires_on(view),
            ),
            lambda e: _tokens(view, caller, place, 400, error=e.message),
        )
        view.form = {}
        return _tokens(view, caller, place, secret=created.secret,
                       secret_name=created.token.name)

    def revoke(view: View, caller: Caller) -> Response:
        place = Place.of(kind, view)
        resource_tokens.revoke_token(caller, place.resolve(caller), view.params["token_id"])
        return done(place.path, "revoked")

    name = kind.value
    for handler, suffix in ((show, "show"), (failed, "failed"), (create, "create"),
                            (revoke, "revoke")):
        handler.__name__ = f"{name}_tokens_{suffix}"
    pages.get(base)(show)
    pages.post(base, failed=failed)(create)
    pages.post(base + "/{token_id}/revoke")(revoke)


# -- workspace members ---------------------------------------------------------------------------


def _members(view: View, caller: Caller, status: int = 200, error: str = "") -> Response:
    slug = view.params["workspace"]
    workspace = workspaces.find_workspace(caller, slug, Action.WORKSPACE_ADMIN)
    _, page = workspaces.list_members(caller, slug, Window(0, 200))
    return view.render(caller, "members.html", status, title=f"Members of {workspace.name}",
                       workspace=workspace, rows=page.items, error=error, notice=notice(view))


@pages.get("/{workspace}/settings/members")
def members(view: View, caller: Caller) -> Response:
    return _members(view, caller)


@pages.post("/{workspace}/settings/members")
def member_set(view: View, caller: Caller) -> Response:
    slug = view.params["workspace"]
    attempt(
        lambda: workspaces.set_member(caller, slug, view.field("username"),
                                      view.field("role") or "member"),
        lambda e: _members(view, caller, 400, e.message),
    )
    return done(f"/{slug}/settings/members", "saved")


@pages.post("/{workspace}/settings/members/{username}/remove")
def member_remove(view: View, caller: Caller) -> Response:
    slug = view.params["workspace"]
    attempt(
        lambda: workspaces.remove_member(caller, slug, view.params["username"]),
        lambda e: _members(view, caller, 400, e.message),
    )
    return done(f"/{slug}/settings/members", "removed")


# -- user permissions of a project or repository ------------------------------------------------


@dataclass(frozen=True)
class Granted:
    """What the permissions page shows of one explicit grant."""

    username: str
    display_name: str
    permission: str


def _permissions(view: View, caller: Caller, kind: ResourceKind, status: int = 200,
                 error: str = "") -> Response:
    p = view.params
    page: Page[ProjectGrant] | Page[RepositoryGrant]
    if kind is ResourceKind.REPOSITORY:
        repo, page = repositories.list_repository_grants(caller, p["workspace"], p["repo"],
                                                         PAGE)
        label = f"{p['workspace']}/{repo.slug}"
        base = back = f"/{label}"
        choices, back_label = tuple(REPOSITORY_GRANTS), label
    else:
        project, page = projects.list_project_grants(caller, p["workspace"], p["project"],
                                                     PAGE)
        label = f"project {project.key} of {p['workspace']}"
        base, choices = f"/{p['workspace']}/projects/{project.key}", tuple(PROJECT_GRANTS)
        back = f"/{p['workspace']}/workspace/projects/{project.key}"
        back_label = f"project {project.name}"
    granted = [Granted(g.user.username, g.user.display_name or "", g.permission)
               for g in page.items]
    more = page.has_more
    return view.render(
        caller, "permissions.html", status, title=f"User permissions of {label}",
        rows=granted, more=more, action=f"{base}/settings/permissions", back=back,
        back_label=back_label,
        choices=choices, kind=kind.value, error=error, notice=notice(view),
    )


def _changing(view: View, caller: Caller, kind: ResourceKind, change: Callable[[], object]
              ) -> None:
    """`change()`, or the page again with the service's message and nothing kept. Unlike
    `attempt`, a user who does not exist is the form's error (400), not a missing page: a
    caller who may not administer the resource still gets the 404 page, from `_permissions`
    itself, which lists the grants only for admins."""
    try:
        change()
    except ServiceError as error:
        status = 400 if isinstance(error, NotFound) else error.status
        raise Rollback(_permissions(view, caller, kind, status, error.message)) from None


def _permission_pages(kind: ResourceKind, base: str) -> None:
    def target(view: View) -> tuple[str, str]:
        p = view.params
        return p["workspace"], p["repo" if kind is ResourceKind.REPOSITORY else "project"]

    def show(view: View, caller: Caller) -> Response:
        return _permissions(view, caller, kind)

    def grant(view: View, caller: Caller) -> Response:
        workspace, name = target(view)
        setter = (repositories.set_repository_grant if kind is ResourceKind.REPOSITORY
                  else projects.set_project_grant)
        _changing(view, caller, kind, lambda: setter(
            caller, workspace, name, view.field("username").strip(), view.field("permission")
        ))
        return done(view.request.url.path, "modified")

    def remove(view: View, caller: Caller) -> Response:
        workspace, name = target(view)
        remover = (repositories.remove_repository_grant if kind is ResourceKind.REPOSITORY
                   else projects.remove_project_grant)
        _changing(view, caller, kind,
                  lambda: remover(caller, workspace, name, view.params["username"]))
        return done(view.request.url.path.rsplit("/", 2)[0], "removed")

    for handler, suffix in ((show, "show"), (grant, "grant"), (remove, "remove")):
        handler.__name__ = f"{kind.value}_permissions_{suffix}"
    pages.get(base)(show)
    pages.post(base)(grant)
    pages.post(base + "/{username}/remove")(remove)


# -- OAuth consumers ----------------------------------------------------------------------------

CONSUMER_SCOPES = tuple(scope.value for scope in Scope)


def _consumers(view: View, caller: Caller, status: int = 200, *, error: str = "",
               secret: str = "", created: OAuthConsumer | None = None) -> Response:
    workspace = oauth_consumers.workspace_for(caller, view.params["workspace"])
    user = caller.require_user()
    rows = oauth_consumers.list_consumers(caller, workspace, PAGE).items
    return view.render(
        caller, "oauth_consumers.html", status, title=f"OAuth consumers of {workspace.name}",
        workspace=workspace, rows=rows, error=error, notice=notice(view), secret=secret,
        secret_name=f"{created.name}'s secret (key {created.key})" if created else "",
        fresh=is_fresh(view, caller), two_step=user.totp_enabled, scopes=CONSUMER_SCOPES,
        form=view.form,
    )


@pages.get("/{workspace}/settings/oauth-consumers")
def consumers(view: View, caller: Caller) -> Response:
    return _consumers(view, caller)


def _consumers_failed(view: View, caller: Caller, message: str) -> Response:
    return _consumers(view, caller, 401, error=message)


@pages.post("/{workspace}/settings/oauth-consumers", failed=_consumers_failed)
def consumer_create(view: View, caller: Caller) -> Response:
    workspace = oauth_consumers.workspace_for(caller, view.params["workspace"])
    stale = require_fresh(view, caller)
    if stale is not None:
        raise Rollback(_consumers(view, caller, 403, error=stale))
    made = attempt(
        lambda: oauth_consumers.create_consumer(
            caller, view.runtime.oauth, workspace, name=view.field("name"),
            description=view.field("description") or None,
            callback=view.field("callback_url") or None,
            is_private=view.field("confidential") == "yes", scopes=view.fields("scope"),
        ),
        lambda e: _consumers(view, caller, 400, error=e.message),
    )
    view.form = {}
    return _consumers(view, caller, secret=made.secret, created=made.consumer)


@pages.post("/{workspace}/settings/oauth-consumers/{consumer_id}/delete")
def consumer_delete(view: View, caller: Caller) -> Response:
    slug = view.params["workspace"]
    workspace = oauth_consumers.workspace_for(caller, slug)
    consumer = oauth_consumers.find_consumer(caller, workspace, view.params["consumer_id"])
    oauth_consumers.delete_consumer(caller, workspace, consumer)
    return done(f"/{slug}/settings/oauth-consumers", "removed")


_token_pages(ResourceKind.WORKSPACE, "/{workspace}/settings/access-tokens")
_token_pages(ResourceKind.PROJECT, "/{workspace}/projects/{project}/settings/access-tokens")
_token_pages(ResourceKind.REPOSITORY, "/{workspace}/{repo}/settings/access-tokens")
_permission_pages(ResourceKind.PROJECT, "/{workspace}/projects/{project}/settings/permissions")
_permission_pages(ResourceKind.REPOSITORY, "/{workspace}/{repo}/settings/permissions")
