"""A repository's pull requests in the web interface: `/{workspace}/{repo}/pull-requests`
(by state) and `…/pull-requests/{id}` (the description, reviewers and their reviews, the
source's build statuses, whether it can be merged, its diff, comments; approve, request
changes, comment, merge, decline). Everything goes through services/pull_requests.py, so the
pages decide, record and emit events exactly as the API does."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response

from gitward.domain.permissions import Action
from gitward.services import build_statuses, cloud_content, merges
from gitward.services import pull_requests as service
from gitward.services.caller import Caller, repository_target
from gitward.services.cloud_content import Opened
from gitward.services.errors import ServiceError
from gitward.storage.common import Window
from gitward.storage.models import PullRequest
from gitward.web.ui.content import diff_lines
from gitward.web.ui.forms import attempt, done, notice
from gitward.web.ui.pages import Pages, View

pages = Pages()

BASE = "/{workspace}/{repo}/pull-requests"
PAGE = Window(0, 50)
STATES = {"open": ("OPEN",), "merged": ("MERGED",), "declined": ("DECLINED",),
          "all": ("OPEN", "MERGED", "DECLINED", "SUPERSEDED")}
STRATEGIES = (("merge_commit", "Merge commit"), ("squash", "Squash"),
              ("fast_forward", "Fast forward"))
MAX_DIFF_BYTES = 1024 * 1024


def _opened(view: View, caller: Caller, action: Action = Action.PULLREQUEST_READ) -> Opened:
    return cloud_content.open_repository(caller, view.runtime.git, view.params["workspace"],
                                         view.params["repo"], action)


def _base(view: View) -> str:
    return f"/{view.params['workspace']}/{view.params['repo']}"


@pages.get(BASE)
def pull_request_list(view: View, caller: Caller) -> Response:
    opened = _opened(view, caller)
    state = view.query("state") or "open"
    if state not in STATES:
        state = "open"
    rows = service.listing(caller, opened, service.Filter(states=frozenset(STATES[state])),
                           PAGE)
    return view.render(
        caller, "pull_requests.html", title=f"Pull requests · {opened.view.slug}",
        repo=opened.view, base=_base(view), rows=rows.items, more=rows.has_more,
        state=state, states=tuple(STATES), comments=service.comment_counts(caller, rows.items),
        admin=caller.can(Action.REPO_CREDENTIALS, repository_target(opened.view)),
        tab="pull-requests",
    )


def _page(view: View, caller: Caller, status: int = 200, error: str = "") -> Response:
    opened = _opened(view, caller)
    pr = service.get(caller, opened, view.params["number"])
    target = repository_target(opened.view)
    can_write = caller.can(Action.PULLREQUEST_WRITE, target)
    check = (service.merge_check(caller, view.runtime.git, opened, pr)
             if pr.state == service.State.OPEN.value and can_write else None)
    patch = service.patch(opened, pr)
    _, changes = service.diffstat(opened, pr)
    statuses = (
        build_statuses.statuses(caller, opened, pr.source_commit, Window(0, 50))[1].items
        if caller.can(Action.BUILD_STATUS_READ, target) else []
    )
    me = caller.user
    mine = next((p for p in pr.participants if me is not None and p.user_id == me.id), None)
    comments = service.comments(caller, pr, Window(0, 200), top_level=True).items
    return view.render(
        caller, "pull_request.html", status, title=f"#{pr.number} {pr.title}",
        repo=opened.view, base=_base(view), pr=pr, check=check, can_write=can_write,
        mine=mine, own=me is not None and pr.author_user_id == me.id, statuses=statuses,
        lines=diff_lines(patch.text[:MAX_DIFF_BYTES]), truncated=patch.truncated or
        len(patch.text) > MAX_DIFF_BYTES, changes=changes, comments=comments,
        replies=service.replies(caller, pr), strategies=STRATEGIES, error=error,
        notice=notice(view), tab="pull-requests",
        admin=caller.can(Action.REPO_CREDENTIALS, target),
    )


@pages.get(BASE + "/{number}")
def pull_request_page(view: View, caller: Caller) -> Response:
    return _page(view, caller)


def _acting(view: View, caller: Caller) -> tuple[Opened, PullRequest]:
    opened = _opened(view, caller, Action.PULLREQUEST_WRITE)
    return opened, service.get(caller, opened, view.params["number"])


def _back(view: View, what: str) -> Response:
    return done(f"{_base(view)}/pull-requests/{view.params['number']}", what)


def _failed(view: View, caller: Caller) -> Callable[[ServiceError], Response]:
    """The pull request's page again, with the service's refusal above it."""
    return lambda e: _page(view, caller, e.status, e.message)


@pages.post(BASE + "/{number}/review")
def pull_request_review(view: View, caller: Caller) -> Response:
    """`status`: approve, unapprove, request-changes or withdraw (the change request)."""
    opened, pr = _acting(view, caller)
    wanted = view.field("status")
    statuses = {"approve": service.Status.APPROVED, "request-changes": service.Status.NEEDS_WORK}
    if wanted in statuses:
        attempt(lambda: service.set_status(caller, opened, pr, statuses[wanted]),
                _failed(view, caller))
    elif wanted == "unapprove":
        attempt(lambda: service.unapprove(caller, opened, pr), _failed(view, caller))
    else:
        attempt(lambda: service.remove_change_request(caller, opened, pr),
                _failed(view, caller))
    return _back(view, "saved")


@pages.post(BASE + "/{number}/comments")
def pull_request_comment(view: View, caller: Caller) -> Response:
    opened, pr = _acting(view, caller)
    parent = view.field("parent") or None
    attempt(
        lambda: service.add_comment(
            caller, opened, pr, service.NewComment(view.raw("text"), parent_id=parent)
        ),
        _failed(view, caller),
    )
    return _back(view, "saved")


@pages.post(BASE + "/{number}/merge")
def pull_request_merge(view: View, caller: Caller) -> Response:
    opened, pr = _acting(view, caller)
    chosen = view.field("strategy") or "merge_commit"
    try:
        strategy = merges.Strategy(chosen)
    except ValueError:
        return _page(view, caller, 400, f"Unknown merge strategy {chosen[:40]!r}.")
    attempt(
        lambda: service.merge(
            caller, view.runtime.git, opened, pr, strategy=strategy,
            message=view.raw("message").strip() or None,
            close_source_branch=view.field("close_source_branch") == "on",
        ),
        _failed(view, caller),
    )
    return _back(view, "merged")


@pages.post(BASE + "/{number}/decline")
def pull_request_decline(view: View, caller: Caller) -> Response:
    opened, pr = _acting(view, caller)
    attempt(lambda: service.decline(caller, opened, pr, None, view.field("reason") or None),
            _failed(view, caller))
    return _back(view, "declined")
