"""Pull requests inside one repository, as both APIs see them (docs/pull-requests.md).

Access is the policy's: reading needs `Action.PULLREQUEST_READ` (the `pullrequest` scope,
REPO_READ), every change `Action.PULLREQUEST_WRITE` (`pullrequest:write`, REPO_WRITE); the
repository is opened with the action, so a caller who may not see it gets its 404.

Every change of a pull request writes an activity and emits its webhook event in the same
unit of work (`services.events.emit`), rendered in both of Bitbucket's formats by
`web/pull_request_events.py` (imported when an event is built: the renderers are the web
layer's, and they take a request-like object, `hosts.linking(caller.base_url)`).

Bitbucket Server's `version` is the row's optimistic lock (`version_id_col`): every change of
the pull request itself moves it, and a change that names a stale version is refused with
409 (`StaleVersion`), as is a concurrent change that lost the race.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.orm.exc import StaleDataError

from gitward.domain import bbql
from gitward.domain.identity import TokenPrincipal
from gitward.domain.permissions import Action, Level, ResourceKind
from gitward.domain.policy import effective_level
from gitward.gitstore import reader as git_reader
from gitward.gitstore.hooks import RefUpdate
from gitward.gitstore.reader import ZERO_ID, CommitDiff, LogPage, PatchText
from gitward.gitstore.store import GitStore
from gitward.services import events, merges, pushes, validation
from gitward.services.caller import Caller, repository_target
from gitward.services.cloud_content import Opened, reading
from gitward.services.errors import BadRequest, Conflict, Forbidden, NotFound
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import (
    PullRequest,
    PullRequestActivity,
    PullRequestComment,
    PullRequestParticipant,
    Repository,
    User,
    utcnow,
)
from gitward.storage.views import RepositoryView

MAX_TITLE = 255
MAX_TEXT = 32768
MAX_REVIEWERS = 100
MAX_PATH = 4096


class State(StrEnum):
    OPEN = "OPEN"
    MERGED = "MERGED"
    DECLINED = "DECLINED"
    SUPERSEDED = "SUPERSEDED"  # Cloud's; never set (no pull request supersedes another)


class Role(StrEnum):
    AUTHOR = "AUTHOR"
    REVIEWER = "REVIEWER"
    PARTICIPANT = "PARTICIPANT"


class Status(StrEnum):
    UNAPPROVED = "UNAPPROVED"
    APPROVED = "APPROVED"
    NEEDS_WORK = "NEEDS_WORK"


class Activity(StrEnum):
    OPENED = "OPENED"
    UPDATED = "UPDATED"  # title, description, reviewers, destination
    RESCOPED = "RESCOPED"  # the source (or destination) branch moved
    APPROVED = "APPROVED"
    UNAPPROVED = "UNAPPROVED"
    NEEDS_WORK = "NEEDS_WORK"  # Cloud: changes requested
    COMMENTED = "COMMENTED"
    MERGED = "MERGED"
    DECLINED = "DECLINED"
    REOPENED = "REOPENED"


class Direction(StrEnum):
    INCOMING = "INCOMING"  # `at` names the destination
    OUTGOING = "OUTGOING"  # `at` names the source


class StaleVersion(Conflict):
    """Server's answer to a change based on an out-of-date pull request."""

    exception_name = "com.atlassian.bitbucket.pull.PullRequestOutOfDateException"


class NotOpen(Conflict):
    exception_name = "com.atlassian.bitbucket.pull.IllegalPullRequestStateException"


# -- opening --------------------------------------------------------------------------------


def row_of(caller: Caller, view: RepositoryView) -> Repository:
    repo = caller.store.repos.repository_by_id(view.id)
    if repo is None:
        raise NotFound(f"Repository {view.workspace.slug}/{view.slug} not found")
    return repo


def get(caller: Caller, opened: Opened, number: str | int) -> PullRequest:
    """The pull request `number` of the repository; 404 if there is none."""
    wanted = number if isinstance(number, int) else validation.row_id(number)
    pr = None
    if wanted is not None and wanted < 2**31:
        pr = caller.store.pull_requests.by_number(opened.view.id, wanted)
    if pr is None:
        raise NotFound(f"Pull request {str(number)[:20]} does not exist in this repository.")
    return pr


# -- who --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    user: User | None
    kind: str
    uuid: str
    name: str


def actor_of(caller: Caller) -> Actor:
    user = caller.user
    if user is not None:
        return Actor(user, "user", user.uuid, user.display_name)
    principal = caller.ctx.principal
    if isinstance(principal, TokenPrincipal):
        return Actor(None, principal.kind.value, principal.uuid, principal.name)
    raise Forbidden("Sign in to change pull requests.")


def _person(caller: Caller, what: str) -> User:
    """The caller's account, for what only a person does (reviews)."""
    user = caller.user
    if user is None:
        raise Forbidden(f"Only a user can {what} (this credential acts for a resource).")
    return user


def can_read(caller: Caller, view: RepositoryView | Repository, user: User) -> bool:
    """Whether `user` (not the caller) may read the repository: reviewers must."""
    if not user.is_active:
        return False
    target = repository_target(view)
    live = caller.store.repos.live_grants_of(user.id, user.is_site_admin, target)
    return effective_level(ResourceKind.REPOSITORY, target, live) >= Level.READ


# -- input --------------------------------------------------------------------------------------


def title(value: object) -> str:
    return validation.required_text(value, "pull request title", MAX_TITLE)


def text(value: object, what: str = "description") -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"The {what} must be a string.")
    if len(value) > MAX_TEXT:
        raise BadRequest(f"The {what} must be at most {MAX_TEXT} characters long.")
    if "\x00" in value or validation.has_lone_surrogate(value):
        raise BadRequest(f"The {what} must be text without NUL characters.")
    return value


def flag(value: object, what: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise BadRequest(f"{what} must be true or false.")
    return value


def branch_of(value: object, what: str) -> str:
    """A branch name as Cloud (`name`) or Server (`refs/heads/name` or `name`) gives it."""
    if not isinstance(value, str) or not value:
        raise BadRequest(f"The {what} branch is required.")
    name = value.removeprefix("refs/heads/")
    return reading(lambda: git_reader.check_branch_name(validation.branch_name(name, what)))


def reviewers_of(caller: Caller, view: RepositoryView, refs: Sequence[str]) -> list[User]:
    """The users `refs` name (username, `{uuid}` or account id), each able to read the
    repository; 400 naming the first that is not."""
    if len(refs) > MAX_REVIEWERS:
        raise BadRequest(f"A pull request has at most {MAX_REVIEWERS} reviewers.")
    found: list[User] = []
    for ref in refs:
        user = caller.store.accounts.user_by_ref(ref) if ref else None
        if user is None or not can_read(caller, view, user):
            raise BadRequest(
                f"Reviewer {ref[:80]!r} is not a user who can read this repository."
            )
        if user not in found:
            found.append(user)
    return found


# -- rendering events -------------------------------------------------------------------------


def _emit(
    caller: Caller, repo: Repository, pr: PullRequest, cloud_key: str | None,
    server_key: str | None, **extra: Any,
) -> None:
    from gitward.web import pull_request_events  # the renderers are the web layer's

    event = pull_request_events.build(caller, repo, pr, cloud_key, server_key, **extra)
    events.emit(caller.store, repo, event)


def _activity(
    caller: Caller, pr: PullRequest, kind: Activity, actor: Actor | None = None,
    comment: PullRequestComment | None = None, **details: Any,
) -> PullRequestActivity:
    who = actor or actor_of(caller)
    row = PullRequestActivity(
        pull_request_id=pr.id, kind=kind.value, actor_user_id=who.user.id if who.user else None,
        actor_user=who.user, actor_kind=who.kind, actor_uuid=who.uuid, actor_name=who.name,
        comment_id=comment.id if comment else None, comment=comment, details=details,
        created_on=utcnow(),
    )
    caller.store.add(row)
    return row


def _target(view: RepositoryView | Repository) -> str:
    return f"repository:{view.workspace.slug}/{view.slug}"


def _save(caller: Caller, pr: PullRequest) -> None:
    """Flush the pull request's change: a concurrent change that moved its version first
    makes this one stale (409)."""
    try:
        caller.store.flush()
    except StaleDataError:
        raise StaleVersion(
            "The pull request was changed by someone else meanwhile; reload it and try again."
        ) from None


def check_version(pr: PullRequest, version: int | None) -> None:
    """Server's optimistic lock: a change naming a version must name the current one."""
    if version is not None and version != pr.version:
        raise StaleVersion(
            f"You are attempting to modify a pull request based on out-of-date information "
            f"(version {version}; the pull request is at version {pr.version})."
        )


def version_of(raw: object) -> int | None:
    """`version` as a query parameter or body field gives it (None when absent)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise BadRequest("version must be an integer.")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.lstrip("-").isdigit() and len(raw) < 12:
        return int(raw)
    raise BadRequest("version must be an integer.")


# -- creating -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewPullRequest:
    title: object
    source: object
    destination: object  # None: the main branch
    description: object = None
    reviewers: Sequence[str] = ()
    close_source_branch: object = None
    draft: object = None


def _participant(pr: PullRequest, user: User) -> PullRequestParticipant | None:
    return next((p for p in pr.participants if p.user_id == user.id), None)


def _add_participant(pr: PullRequest, user: User, role: Role) -> PullRequestParticipant:
    row = PullRequestParticipant(user_id=user.id, user=user, role=role.value,
                                 status=Status.UNAPPROVED.value)
    pr.participants.append(row)
    return row


def create(caller: Caller, opened: Opened, new: NewPullRequest) -> PullRequest:
    """Open a pull request from one branch of the repository to another."""
    view = opened.view
    pr_title = title(new.title)
    description = text(new.description)
    source = branch_of(new.source, "source")
    if new.destination is None or new.destination == "":
        main = opened.reader.default_branch()
        if main is None:
            raise BadRequest("The repository has no main branch: name the destination branch.")
        destination = main
    else:
        destination = branch_of(new.destination, "destination")
    close = flag(new.close_source_branch, "close_source_branch") or False
    draft = flag(new.draft, "draft") or False
    source_commit = opened.reader.ref_target(f"refs/heads/{source}")
    if source_commit is None:
        raise BadRequest(f"The source branch {source!r} does not exist.")
    destination_commit = opened.reader.ref_target(f"refs/heads/{destination}")
    if destination_commit is None:
        raise BadRequest(f"The destination branch {destination!r} does not exist.")
    if source == destination:
        raise BadRequest("The source and destination branches must differ.")
    existing = caller.store.pull_requests.open_between(view.id, source, destination)
    if existing is not None:
        raise Conflict(
            f"Only one pull request may be open for a given source and target branch: "
            f"pull request #{existing.number} is open from {source!r} to {destination!r}."
        )
    who = actor_of(caller)
    reviewers = reviewers_of(caller, view, new.reviewers)
    if who.user is not None and who.user in reviewers:
        raise BadRequest(f"{who.user.username} is the author and cannot be a reviewer.")
    repo = row_of(caller, view)
    now = utcnow()
    pr = PullRequest(
        repository_id=view.id, repository=repo,
        number=caller.store.pull_requests.next_number(view.id),
        title=pr_title, description=description, state=State.OPEN.value,
        author_user_id=who.user.id if who.user else None, author_user=who.user,
        author_kind=who.kind, author_uuid=who.uuid, author_name=who.name,
        source_branch=source, source_commit=source_commit,
        destination_branch=destination, destination_commit=destination_commit,
        close_source_branch=close, draft=draft, reason="", created_on=now, updated_on=now,
        participants=[],
    )
    if who.user is not None:
        _add_participant(pr, who.user, Role.AUTHOR)
    for user in reviewers:
        _add_participant(pr, user, Role.REVIEWER)
    caller.store.add(pr)
    caller.store.flush()
    _activity(caller, pr, Activity.OPENED, who)
    caller.audit("pullrequest.create", target=_target(view), id=pr.number,
                 source=source, destination=destination)
    _emit(caller, repo, pr, "pullrequest:created", "pr:opened")
    return pr


# -- listing ----------------------------------------------------------------------------------

#: BBQL fields of the Cloud listing (evaluated in memory over the repository's pull requests
#: in the asked states).
FIELDS: bbql.Fields = {
    "id": bbql.Field(bbql.FieldType.NUMBER),
    "title": bbql.Field(bbql.FieldType.TEXT),
    "description": bbql.Field(bbql.FieldType.TEXT),
    "state": bbql.Field(bbql.FieldType.TEXT),
    "author.username": bbql.Field(bbql.FieldType.TEXT, nullable=True),
    "author.uuid": bbql.Field(bbql.FieldType.TEXT),
    "author.display_name": bbql.Field(bbql.FieldType.TEXT),
    "source.branch.name": bbql.Field(bbql.FieldType.TEXT),
    "destination.branch.name": bbql.Field(bbql.FieldType.TEXT),
    "source.commit.hash": bbql.Field(bbql.FieldType.TEXT),
    "destination.commit.hash": bbql.Field(bbql.FieldType.TEXT),
    "reviewers.username": bbql.Field(bbql.FieldType.TEXT, nullable=True),
    "participants.user.username": bbql.Field(bbql.FieldType.TEXT, nullable=True),
    "close_source_branch": bbql.Field(bbql.FieldType.BOOLEAN),
    "draft": bbql.Field(bbql.FieldType.BOOLEAN),
    "created_on": bbql.Field(bbql.FieldType.DATETIME),
    "updated_on": bbql.Field(bbql.FieldType.DATETIME),
}


def _value(pr: PullRequest, path: str) -> bbql.Value:
    simple: dict[str, bbql.Value] = {
        "id": pr.number,
        "title": pr.title,
        "description": pr.description,
        "state": pr.state,
        "author.username": pr.author_user.username if pr.author_user else None,
        "author.uuid": "{" + pr.author_uuid + "}",
        "author.display_name": pr.author_name,
        "source.branch.name": pr.source_branch,
        "destination.branch.name": pr.destination_branch,
        "source.commit.hash": pr.source_commit,
        "destination.commit.hash": pr.destination_commit,
        "close_source_branch": pr.close_source_branch,
        "draft": pr.draft,
        "created_on": pr.created_on,
        "updated_on": pr.updated_on,
    }
    return simple.get(path)


def _matches(query: bbql.Query, pr: PullRequest) -> bool:
    """`query` on one pull request; a comparison on a list field (reviewers, participants)
    holds when it holds for one of the list's users, as Bitbucket has it."""
    if isinstance(query, bbql.Comparison):
        if query.path in ("reviewers.username", "participants.user.username"):
            role = Role.REVIEWER.value if query.path.startswith("reviewers") else None
            names: list[bbql.Value] = [
                p.user.username for p in pr.participants
                if (role is None and p.role != Role.AUTHOR.value) or p.role == role
            ] or [None]
            return any(bbql.matches(query, lambda _, n=n: n) for n in names)  # type: ignore[misc]
        return bbql.matches(query, lambda path: _value(pr, path))
    if isinstance(query, bbql.And):
        return all(_matches(part, pr) for part in query.parts)
    return any(_matches(part, pr) for part in query.parts)


def names_state(query: bbql.Query) -> bool:
    """Whether a query compares the state anywhere."""
    if isinstance(query, bbql.Comparison):
        return query.path == "state"
    return any(names_state(part) for part in query.parts)


@dataclass(frozen=True)
class Filter:
    states: frozenset[str] | None = frozenset({State.OPEN.value})  # None: every state
    query: bbql.Query | None = None
    sort: bbql.Sort | None = None
    direction: Direction = Direction.INCOMING
    at: str | None = None  # a branch name
    participants: tuple[tuple[Role | None, str, Status | None], ...] = ()
    newest_first: bool = True
    text: str | None = None  # Server's filterText: in the title or description


def _has_participant(
    pr: PullRequest, role: Role | None, username: str, status: Status | None
) -> bool:
    for p in pr.participants:
        if p.user.username != username:
            continue
        if role is not None and p.role != role.value:
            continue
        if status is not None and p.status != status.value:
            continue
        return True
    return False


def listing(caller: Caller, opened: Opened, wanted: Filter, window: Window) -> Page[PullRequest]:
    rows = list(caller.store.pull_requests.of_repository(
        opened.view.id, wanted.states, wanted.newest_first
    ))
    if wanted.at is not None:
        branch = wanted.at.removeprefix("refs/heads/")
        side = "destination_branch" if wanted.direction is Direction.INCOMING else "source_branch"
        rows = [pr for pr in rows if getattr(pr, side) == branch]
    for role, username, status in wanted.participants:
        rows = [pr for pr in rows if _has_participant(pr, role, username, status)]
    if wanted.text:
        needle = wanted.text.casefold()
        rows = [pr for pr in rows
                if needle in pr.title.casefold() or needle in pr.description.casefold()]
    if wanted.query is not None:
        query = wanted.query
        rows = [pr for pr in rows if _matches(query, pr)]
    if wanted.sort is not None:
        path = wanted.sort.path
        keyed = [(_value(pr, path), pr) for pr in rows]
        present = [(k, pr) for k, pr in keyed if k is not None]
        present.sort(key=lambda pair: pair[0], reverse=wanted.sort.descending)
        rows = [pr for _, pr in present] + [pr for k, pr in keyed if k is None]
    return Page.of(rows, window)


def comment_counts(caller: Caller, prs: Sequence[PullRequest]) -> dict[int, int]:
    return caller.store.pull_requests.comment_counts([pr.id for pr in prs])


def authored_by(
    caller: Caller, user_ref: str, *, workspace: str | None, states: frozenset[str] | None,
    window: Window,
) -> Page[PullRequest]:
    """Cloud's `/pullrequests/{user}` (and per workspace): the pull requests the user
    opened, in the repositories the caller may read them in. 404 for no such user (or
    workspace)."""
    if workspace is not None:
        found = caller.store.repos.workspace_by_slug(workspace)
        if found is None:
            raise caller.not_found(f"Workspace {workspace} not found")
    user = caller.store.accounts.user_by_ref(user_ref)
    if user is None:
        raise caller.not_found(f"User {user_ref[:80]} not found")
    page = of_participant(caller, user, states=states, roles=frozenset({Role.AUTHOR.value}),
                          status=None, newest_first=True, window=EVERYTHING)
    rows = [pr for pr in page.items
            if workspace is None or pr.repository.workspace.slug == workspace]
    return Page.of(rows, window)


def of_participant(
    caller: Caller, user: User, *, states: frozenset[str] | None, roles: frozenset[str] | None,
    status: Status | None, newest_first: bool, window: Window,
) -> Page[PullRequest]:
    """The pull requests, in every repository the caller may read them, in which `user`
    has one of `roles` (and, with `status`, that review): Server's dashboard and inbox."""
    rows = caller.store.pull_requests.of_participant(user.id, states, roles, newest_first)
    readable: dict[int, bool] = {}
    found = []
    for pr in rows:
        allowed = readable.get(pr.repository_id)
        if allowed is None:
            allowed = readable[pr.repository_id] = caller.can(
                Action.PULLREQUEST_READ, repository_target(pr.repository)
            )
        if not allowed:
            continue
        if status is not None and not any(
            p.user_id == user.id and p.status == status.value for p in pr.participants
        ):
            continue
        found.append(pr)
    return Page.of(found, window)


# -- changing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """What an update sends; None: unchanged."""

    title: object = None
    description: object = None
    reviewers: Sequence[str] | None = None
    destination: object = None
    close_source_branch: object = None
    draft: object = None
    version: int | None = None


def _require_open(pr: PullRequest, what: str) -> None:
    if pr.state != State.OPEN.value:
        raise NotOpen(f"Pull request #{pr.number} is {pr.state.lower()}: it cannot be {what}.")


def update(caller: Caller, opened: Opened, pr: PullRequest, changes: Changes) -> PullRequest:
    """Change the title, description, reviewers, destination, close_source_branch or draft of
    an open pull request. Everything is checked before anything changes."""
    check_version(pr, changes.version)
    _require_open(pr, "updated")
    new_title = title(changes.title) if changes.title is not None else pr.title
    new_description = (text(changes.description) if changes.description is not None
                       else pr.description)
    flags = {name: flag(getattr(changes, name), name)
             for name in ("close_source_branch", "draft")}
    destination, destination_commit = pr.destination_branch, pr.destination_commit
    if changes.destination is not None:
        destination = branch_of(changes.destination, "destination")
        if destination != pr.destination_branch:
            target = opened.reader.ref_target(f"refs/heads/{destination}")
            if target is None:
                raise BadRequest(f"The destination branch {destination!r} does not exist.")
            if destination == pr.source_branch:
                raise BadRequest("The source and destination branches must differ.")
            other = caller.store.pull_requests.open_between(
                opened.view.id, pr.source_branch, destination
            )
            if other is not None and other.id != pr.id:
                raise Conflict(
                    f"Only one pull request may be open for a given source and target branch:"
                    f" pull request #{other.number} is open to {destination!r}."
                )
            destination_commit = target
    wanted: list[User] | None = None
    if changes.reviewers is not None:
        wanted = reviewers_of(caller, opened.view, changes.reviewers)
        author = pr.author_user
        if author is not None and author in wanted:
            raise BadRequest(f"{author.username} is the author and cannot be a reviewer.")

    changed: dict[str, Any] = {}
    if new_title != pr.title:
        changed["title"] = {"old": pr.title, "new": new_title}
        pr.title = new_title
    if new_description != pr.description:
        changed["description"] = {"old": pr.description, "new": new_description}
        pr.description = new_description
    for name, value in flags.items():
        if value is not None and value != getattr(pr, name):
            changed[name] = {"old": getattr(pr, name), "new": value}
            setattr(pr, name, value)
    if destination != pr.destination_branch:
        changed["destination"] = {"old": pr.destination_branch, "new": destination}
        pr.destination_branch = destination
        pr.destination_commit = destination_commit
    if wanted is not None:
        before = sorted(p.user.username for p in pr.participants if p.role == Role.REVIEWER)
        for p in list(pr.participants):
            if p.role == Role.REVIEWER.value and p.user not in wanted:
                if p.participated_on is not None or p.status != Status.UNAPPROVED.value:
                    p.role = Role.PARTICIPANT.value  # their review stays, as Bitbucket keeps it
                else:
                    pr.participants.remove(p)
        for user in wanted:
            mine = _participant(pr, user)
            if mine is None:
                _add_participant(pr, user, Role.REVIEWER)
            elif mine.role == Role.PARTICIPANT.value:
                mine.role = Role.REVIEWER.value
        after = sorted(u.username for u in wanted)
        if before != after:
            changed["reviewers"] = {"old": before, "new": after}
    if not changed:
        return pr
    pr.updated_on = utcnow()  # the row changes, so its version moves (reviewers too)
    _save(caller, pr)
    _activity(caller, pr, Activity.UPDATED, changes=changed)
    caller.audit("pullrequest.update", target=_target(opened.view), id=pr.number,
                 fields=sorted(changed))
    _emit(caller, row_of(caller, opened.view), pr, "pullrequest:updated", "pr:modified",
          changes=changed)
    return pr


def _close(caller: Caller, opened: Opened, pr: PullRequest, state: State, reason: str = "") -> None:
    pr.state = state.value
    now = utcnow()
    pr.updated_on = now
    pr.closed_on = now
    pr.closed_by = caller.user
    pr.closed_by_user_id = caller.user.id if caller.user else None
    pr.reason = reason
    _save(caller, pr)


def decline(
    caller: Caller, opened: Opened, pr: PullRequest, version: int | None, reason: object = None
) -> PullRequest:
    check_version(pr, version)
    _require_open(pr, "declined")
    _close(caller, opened, pr, State.DECLINED, text(reason, "reason"))
    _activity(caller, pr, Activity.DECLINED)
    caller.audit("pullrequest.decline", target=_target(opened.view), id=pr.number)
    _emit(caller, row_of(caller, opened.view), pr, "pullrequest:rejected", "pr:declined")
    return pr


def reopen(caller: Caller, opened: Opened, pr: PullRequest, version: int | None) -> PullRequest:
    """Reopen a declined pull request (Server): its branches must still exist, and no other
    pull request be open between them."""
    check_version(pr, version)
    if pr.state != State.DECLINED.value:
        raise NotOpen(f"Pull request #{pr.number} is {pr.state.lower()}: only a declined "
                      "pull request can be reopened.")
    source = opened.reader.ref_target(f"refs/heads/{pr.source_branch}")
    destination = opened.reader.ref_target(f"refs/heads/{pr.destination_branch}")
    if source is None or destination is None:
        gone = pr.source_branch if source is None else pr.destination_branch
        raise NotOpen(f"The branch {gone!r} no longer exists: the pull request cannot be reopened.")
    other = caller.store.pull_requests.open_between(
        opened.view.id, pr.source_branch, pr.destination_branch
    )
    if other is not None:
        raise Conflict(f"Pull request #{other.number} is already open between these branches.")
    pr.state = State.OPEN.value
    pr.closed_on = None
    pr.closed_by = None
    pr.closed_by_user_id = None
    pr.reason = ""
    pr.source_commit = source
    pr.destination_commit = destination
    pr.updated_on = utcnow()
    _save(caller, pr)
    _activity(caller, pr, Activity.REOPENED)
    caller.audit("pullrequest.reopen", target=_target(opened.view), id=pr.number)
    _emit(caller, row_of(caller, opened.view), pr, "pullrequest:updated", "pr:opened")
    return pr


def delete(caller: Caller, opened: Opened, pr: PullRequest, version: int | None) -> None:
    """Server's DELETE: only the author or a repository administrator; the number is not
    reused."""
    check_version(pr, version)
    user = caller.user
    is_author = user is not None and pr.author_user_id == user.id
    if not is_author:
        caller.require(Action.REPO_ADMIN, repository_target(opened.view),
                       f"Pull request {pr.number} does not exist in this repository.")
    repo = row_of(caller, opened.view)
    _emit(caller, repo, pr, None, "pr:deleted")
    caller.audit("pullrequest.delete", target=_target(opened.view), id=pr.number)
    caller.store.delete(pr)
    caller.store.flush()


# -- reviews --------------------------------------------------------------------------------


def set_status(
    caller: Caller, opened: Opened, pr: PullRequest, status: Status, user_slug: str | None = None,
    *, only_from: Status | None = None,
) -> PullRequestParticipant:
    """The caller's review: approve, unapprove, or needs work (Cloud: request changes).
    Server's PUT names the user, which must be the caller. With `only_from`, nothing
    changes unless the review is that now (Cloud's DELETE of an approval or of a change
    request withdraws only that)."""
    user = _person(caller, "review a pull request")
    if user_slug is not None and user_slug != user.username:
        raise Forbidden("A review can only be given as yourself.")
    _require_open(pr, "reviewed")
    if pr.author_user_id == user.id:
        raise BadRequest("You cannot review your own pull request.")
    mine = _participant(pr, user)
    previous = Status(mine.status) if mine is not None else Status.UNAPPROVED
    if mine is None:
        mine = _add_participant(pr, user, Role.PARTICIPANT)
    if previous is status or (only_from is not None and previous is not only_from):
        return mine
    mine.status = status.value
    mine.participated_on = utcnow()
    mine.reviewed_commit = pr.source_commit if status is not Status.UNAPPROVED else None
    caller.store.flush()
    kind = {
        Status.APPROVED: Activity.APPROVED,
        Status.NEEDS_WORK: Activity.NEEDS_WORK,
        Status.UNAPPROVED: Activity.UNAPPROVED,
    }[status]
    _activity(caller, pr, kind, previous=previous.value)
    caller.audit("pullrequest.review", target=_target(opened.view), id=pr.number,
                 status=status.value)
    if status is Status.APPROVED:
        cloud_key = "pullrequest:approved"
    elif status is Status.NEEDS_WORK:
        cloud_key = "pullrequest:changes_request_created"
    elif previous is Status.NEEDS_WORK:
        cloud_key = "pullrequest:changes_request_removed"
    else:
        cloud_key = "pullrequest:unapproved"
    server_key = {
        Status.APPROVED: "pr:reviewer:approved",
        Status.NEEDS_WORK: "pr:reviewer:needs_work",
        Status.UNAPPROVED: "pr:reviewer:unapproved",
    }[status]
    _emit(caller, row_of(caller, opened.view), pr, cloud_key, server_key,
          participant=mine, previous_status=previous.value)
    return mine


def unapprove(caller: Caller, opened: Opened, pr: PullRequest) -> PullRequestParticipant:
    return set_status(caller, opened, pr, Status.UNAPPROVED, only_from=Status.APPROVED)


def remove_change_request(
    caller: Caller, opened: Opened, pr: PullRequest
) -> PullRequestParticipant:
    return set_status(caller, opened, pr, Status.UNAPPROVED, only_from=Status.NEEDS_WORK)


# -- comments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewComment:
    text: object
    parent_id: object = None
    path: object = None
    line_from: object = None
    line_to: object = None
    line_type: object = None  # Server: ADDED, REMOVED, CONTEXT
    extra: Mapping[str, Any] = field(default_factory=dict)


def _line(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**31:
        raise BadRequest(f"The comment's {what} line must be a positive integer.")
    return value


def _comment_text(value: object) -> str:
    body = text(value, "comment text")
    if not body.strip():
        raise BadRequest("A comment needs text.")
    return body


def comment(caller: Caller, pr: PullRequest, comment_id: str | int) -> PullRequestComment:
    wanted = comment_id if isinstance(comment_id, int) else validation.row_id(comment_id)
    found = None
    if wanted is not None and 0 < wanted < 2**31:  # the column's range
        found = caller.store.pull_requests.comment(pr, wanted)
    if found is None:
        raise NotFound(f"Comment {str(comment_id)[:20]} does not exist on this pull request.")
    return found


def add_comment(
    caller: Caller, opened: Opened, pr: PullRequest, new: NewComment
) -> PullRequestComment:
    """Comment on a pull request (any state, as Bitbucket allows), reply to a comment
    (`parent_id`), or comment inline on a file (`path`) and line (`line_to` on the new side,
    `line_from` on the old one)."""
    body = _comment_text(new.text)
    parent: PullRequestComment | None = None
    if new.parent_id is not None:
        if isinstance(new.parent_id, bool) or not isinstance(new.parent_id, (int, str)):
            raise BadRequest("parent.id must be a comment id.")
        try:
            parent = comment(caller, pr, new.parent_id)
        except NotFound:
            raise BadRequest(f"No comment {new.parent_id!r} to reply to.") from None
        if parent.deleted:
            raise BadRequest("A deleted comment cannot be replied to.")
    path: str | None = None
    line_from = line_to = None
    line_type: str | None = None
    if new.path is not None:
        if not isinstance(new.path, str) or not new.path or len(new.path) > MAX_PATH:
            raise BadRequest("An inline comment's path must be a file's path.")
        path = reading(lambda: git_reader.check_path(str(new.path)))
        line_from = _line(new.line_from, "from")
        line_to = _line(new.line_to, "to")
        if new.line_type is not None:
            if new.line_type not in ("ADDED", "REMOVED", "CONTEXT"):
                raise BadRequest("lineType must be ADDED, REMOVED or CONTEXT.")
            line_type = str(new.line_type)
        elif line_from is not None or line_to is not None:
            line_type = "REMOVED" if line_to is None else ("ADDED" if line_from is None
                                                           else "CONTEXT")
    elif new.line_from is not None or new.line_to is not None:
        raise BadRequest("An inline comment needs the file's path.")
    who = actor_of(caller)
    now = utcnow()
    row = PullRequestComment(
        pull_request_id=pr.id, parent_id=parent.id if parent else None,
        author_user_id=who.user.id if who.user else None, author_user=who.user,
        author_kind=who.kind, author_uuid=who.uuid, author_name=who.name, text=body,
        path=path, line_from=line_from, line_to=line_to, line_type=line_type,
        deleted=False, version=0, created_on=now, updated_on=now,
    )
    caller.store.add(row)
    if who.user is not None:
        mine = _participant(pr, who.user)
        if mine is None:
            mine = _add_participant(pr, who.user, Role.PARTICIPANT)
        mine.participated_on = now
    caller.store.flush()
    _activity(caller, pr, Activity.COMMENTED, who, row, action="ADDED")
    caller.audit("pullrequest.comment", target=_target(opened.view), id=pr.number,
                 comment=row.id)
    _emit(caller, row_of(caller, opened.view), pr, "pullrequest:comment_created",
          "pr:comment:added", comment=row)
    return row


def _own(caller: Caller, row: PullRequestComment) -> bool:
    who = actor_of(caller)
    return row.author_uuid == who.uuid and row.author_kind == who.kind


def edit_comment(
    caller: Caller, opened: Opened, pr: PullRequest, row: PullRequestComment, new_text: object,
    version: int | None,
) -> PullRequestComment:
    """Only the comment's author edits it (as Bitbucket)."""
    if row.deleted:
        raise NotFound(f"Comment {row.id} does not exist on this pull request.")
    if not _own(caller, row):
        raise Forbidden("Only the author of a comment can edit it.")
    if version is not None and version != row.version:
        raise StaleVersion(
            f"You are attempting to modify a comment based on out-of-date information "
            f"(version {version}; the comment is at version {row.version})."
        )
    body = _comment_text(new_text)
    if body == row.text:
        return row
    previous = row.text
    row.text = body
    row.version += 1
    row.updated_on = utcnow()
    caller.store.flush()
    _emit(caller, row_of(caller, opened.view), pr, "pullrequest:comment_updated",
          "pr:comment:edited", comment=row, previous_text=previous)
    return row


def delete_comment(
    caller: Caller, opened: Opened, pr: PullRequest, row: PullRequestComment,
    version: int | None,
) -> None:
    """The author or a repository administrator deletes a comment. It stays as `deleted`
    (its replies keep their place), its text gone."""
    if row.deleted:
        raise NotFound(f"Comment {row.id} does not exist on this pull request.")
    if not _own(caller, row):
        caller.require(Action.REPO_ADMIN, repository_target(opened.view),
                       f"Comment {row.id} does not exist on this pull request.")
    if version is not None and version != row.version:
        raise StaleVersion(
            f"You are attempting to modify a comment based on out-of-date information "
            f"(version {version}; the comment is at version {row.version})."
        )
    repo = row_of(caller, opened.view)
    _emit(caller, repo, pr, "pullrequest:comment_deleted", "pr:comment:deleted", comment=row)
    row.deleted = True
    row.text = ""
    row.version += 1
    row.updated_on = utcnow()
    caller.store.flush()


def comments(
    caller: Caller, pr: PullRequest, window: Window, *, top_level: bool = False
) -> Page[PullRequestComment]:
    return caller.store.pull_requests.comments(pr, window, top_level=top_level)


def replies(caller: Caller, pr: PullRequest) -> dict[int, list[PullRequestComment]]:
    """Each comment's replies (by parent id), oldest first, without the deleted ones."""
    found: dict[int, list[PullRequestComment]] = {}
    for row in caller.store.pull_requests.all_comments(pr):
        if row.parent_id is not None and not row.deleted:
            found.setdefault(row.parent_id, []).append(row)
    return found


#: Cloud's activity has no entry for a withdrawn approval.
CLOUD_HIDDEN = (Activity.UNAPPROVED.value,)


def activities(
    caller: Caller, pr: PullRequest, window: Window, *, cloud: bool
) -> Page[PullRequestActivity]:
    """Newest first. Cloud shows no withdrawn approvals; Server no deleted comments."""
    if cloud:
        return caller.store.pull_requests.activities(pr, window, without=CLOUD_HIDDEN)
    return caller.store.pull_requests.activities(pr, window, hide_deleted_comments=True)


# -- what it changes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """What the pull request brings: `source`'s commits not in `destination`, and the diff
    from their merge base (`base`) to `source`."""

    source: str
    destination: str
    base: str | None


def commit_range(opened: Opened, pr: PullRequest) -> Range:
    """For an open pull request, against the destination branch as it is now (its recorded
    commit if the branch is gone); for a closed one, the commits recorded when it closed."""
    destination = pr.destination_commit
    if pr.state == State.OPEN.value:
        now = opened.reader.ref_target(f"refs/heads/{pr.destination_branch}")
        destination = now or destination
    try:
        base = opened.reader.merge_base(pr.source_commit, destination)
    except (KeyError, ValueError):
        base = None
    return Range(pr.source_commit, destination, base)


def commits(opened: Opened, pr: PullRequest, window: Window) -> LogPage:
    span = commit_range(opened, pr)
    limit = window.limit if window.limit is not None else 100
    return reading(lambda: opened.reader.log(
        [span.source], [span.destination], start=window.offset, limit=limit
    ))


def patch(opened: Opened, pr: PullRequest) -> PatchText:
    span = commit_range(opened, pr)
    return reading(lambda: opened.reader.patch(span.source, span.base or span.destination))


#: A patch series holds at most this many commits (the oldest first), and this many bytes.
MAX_PATCH_COMMITS = 250
MAX_PATCH_BYTES = 10 * 1024 * 1024


def patch_series(opened: Opened, pr: PullRequest) -> PatchText:
    """The pull request's commits as `git format-patch --stdout` writes them (mbox), oldest
    first; cut (`truncated`) after MAX_PATCH_COMMITS commits or MAX_PATCH_BYTES."""
    span = commit_range(opened, pr)
    log = reading(lambda: opened.reader.log(
        [span.source], [span.destination], limit=MAX_PATCH_COMMITS
    ))
    parts: list[str] = []
    size = 0
    total = len(log.commits)
    for number, c in enumerate(reversed(log.commits), start=1):
        subject, _, body = c.message.partition("\n")
        diff = opened.reader.patch(c.id, c.parents[0] if c.parents else None).text
        when = c.author_date.strftime("%a, %d %b %Y %H:%M:%S %z")
        text = (
            f"From {c.id} Mon Sep 17 00:00:00 2001\n"
            f"From: {c.author.name} <{c.author.email}>\n"
            f"Date: {when}\n"
            f"Subject: [PATCH {number}/{total}] {subject.strip()}\n\n"
            f"{body.strip()}{chr(10) if body.strip() else ''}---\n{diff}\n"
        )
        if size + len(text) > MAX_PATCH_BYTES:
            return PatchText("".join(parts), truncated=True)
        parts.append(text)
        size += len(text)
    return PatchText("".join(parts), truncated=not log.is_last)


def diffstat(opened: Opened, pr: PullRequest) -> tuple[Range, CommitDiff]:
    span = commit_range(opened, pr)
    return span, reading(lambda: opened.reader.diff(span.source, span.base or span.destination))


def containing(caller: Caller, opened: Opened, revision: str, window: Window) -> Page[PullRequest]:
    """The pull requests (any state) whose commits include `revision`: it is in the source's
    history and not in the destination's (the destination as the pull request's range has
    it), newest first."""
    commit = reading(lambda: opened.reader.resolve(revision))
    found = []
    for pr in caller.store.pull_requests.of_repository(opened.view.id, None):
        span = commit_range(opened, pr)
        try:
            in_source = opened.reader.merge_base(commit, span.source) == commit
            in_destination = opened.reader.merge_base(commit, span.destination) == commit
        except (KeyError, ValueError):  # a commit gone from the repository
            continue
        if in_source and not in_destination:
            found.append(pr)
    return Page.of(found, window)


# -- pushes ---------------------------------------------------------------------------------


def on_push(caller: Caller, repo: Repository, updates: Sequence[RefUpdate]) -> None:
    """After refs moved (`pushes.record_push`): an open pull request whose source branch
    moved follows it (its source commit, version, a RESCOPED activity and the events); one
    whose source branch was deleted stays open at its last commit, as on Bitbucket."""
    moved = {
        u.ref.removeprefix("refs/heads/"): u
        for u in updates
        if u.ref.startswith("refs/heads/") and u.new != ZERO_ID and not set(u.new) <= {"0"}
    }
    if not moved:
        return
    for pr in caller.store.pull_requests.open_touching(repo.id, list(moved)):
        update_ = moved.get(pr.source_branch)
        if update_ is None or update_.new == pr.source_commit:
            continue
        previous = pr.source_commit
        pr.source_commit = update_.new
        pr.updated_on = utcnow()
        _save(caller, pr)
        actor = _push_actor(caller)
        _activity(caller, pr, Activity.RESCOPED, actor, previous_from_hash=previous,
                  from_hash=update_.new, to_hash=pr.destination_commit)
        _emit(caller, repo, pr, "pullrequest:updated", "pr:from_ref_updated",
              previous_from_hash=previous)


def _push_actor(caller: Caller) -> Actor:
    try:
        return actor_of(caller)
    except Forbidden:  # a recovered push of a caller who is gone: nobody to name
        return Actor(None, "anonymous", "00000000-0000-0000-0000-000000000000", "Anonymous")


# -- merging --------------------------------------------------------------------------------

#: The strategies by Cloud's names, and by Server's ids (Server also takes Cloud's names,
#: which atlassian-python-api sends it).
CLOUD_STRATEGIES: dict[str, merges.Strategy] = {s.value: s for s in merges.Strategy}
SERVER_STRATEGIES: dict[str, merges.Strategy] = {
    **CLOUD_STRATEGIES,
    "no-ff": merges.Strategy.MERGE_COMMIT,
    "ff-only": merges.Strategy.FAST_FORWARD,
}


class MergeVetoed(Conflict):
    exception_name = "com.atlassian.bitbucket.pull.PullRequestMergeVetoedException"


def strategy_of(raw: object, accepted: Mapping[str, merges.Strategy]) -> merges.Strategy:
    """A strategy by one of the `accepted` names; the default (None) is a merge commit."""
    if raw is None or raw == "":
        return merges.Strategy.MERGE_COMMIT
    found = accepted.get(raw) if isinstance(raw, str) else None
    if found is None:
        shown = raw[:40] if isinstance(raw, str) else type(raw).__name__
        raise BadRequest(f"Not a merge strategy: {shown!r} (one of {', '.join(accepted)}).")
    return found


@dataclass(frozen=True)
class MergeCheck:
    """Whether the pull request can be merged now, and why not (Server's `GET …/merge`)."""

    can_merge: bool
    conflicted: bool
    vetoes: tuple[tuple[str, str], ...]  # (summary, detail)

    @property
    def outcome(self) -> str:
        return "CONFLICTED" if self.conflicted else "CLEAN"


def merge_check(caller: Caller, git: GitStore, opened: Opened, pr: PullRequest) -> MergeCheck:
    vetoes: list[tuple[str, str]] = []
    if pr.state != State.OPEN.value:
        vetoes.append(("The pull request is not open",
                       f"Pull request #{pr.number} is {pr.state.lower()}."))
        return MergeCheck(False, False, tuple(vetoes))
    if not caller.can(Action.PULLREQUEST_WRITE, repository_target(opened.view)):
        vetoes.append(("You cannot merge this pull request",
                       "Merging needs write access to the repository."))
    source = opened.reader.ref_target(f"refs/heads/{pr.source_branch}")
    destination = opened.reader.ref_target(f"refs/heads/{pr.destination_branch}")
    if source is None or destination is None:
        gone = pr.source_branch if source is None else pr.destination_branch
        vetoes.append(("A branch is missing", f"The branch {gone!r} no longer exists."))
        return MergeCheck(False, False, tuple(vetoes))
    found = merges.check(git, opened.view.storage_name, source, destination)
    if found.merged:
        vetoes.append(("Nothing to merge",
                       f"{pr.destination_branch} already contains {pr.source_branch}."))
    conflicted = found.conflicted and not found.merged
    return MergeCheck(not vetoes and not conflicted, conflicted, tuple(vetoes))


def merge(
    caller: Caller, git: GitStore, opened: Opened, pr: PullRequest, *,
    strategy: merges.Strategy, message: object, close_source_branch: object = None,
    version: int | None = None, default_message: str | None = None,
) -> PullRequest:
    """Merge an open pull request's source commit into its destination branch (the merge
    engine: the push check on the destination, compare-and-swap, the push's record), mark
    it MERGED with its merge commit, and delete the source branch when asked (or when the
    pull request says so). A conflict is refused naming the files; nothing moves."""
    check_version(pr, version)
    _require_open(pr, "merged")
    close = flag(close_source_branch, "close_source_branch")
    if close is None:
        close = pr.close_source_branch
    source_ref = f"refs/heads/{pr.source_branch}"
    source = opened.reader.ref_target(source_ref)
    if source is None:
        raise MergeVetoed(f"The source branch {pr.source_branch!r} no longer exists: "
                          "nothing to merge.")
    if message is None or message == "":
        message = default_message or (
            f"Merged in {pr.source_branch} (pull request #{pr.number})\n\n{pr.title}\n")
    repo = row_of(caller, opened.view)
    merged = merges.merge(caller, git, repo, source=source,
                          destination_branch=pr.destination_branch, strategy=strategy,
                          message=message if isinstance(message, str) else "")
    now = utcnow()
    pr.state = State.MERGED.value
    pr.source_commit = source
    pr.destination_commit = merged.previous
    pr.merge_commit = merged.commit
    pr.closed_on = now
    pr.updated_on = now
    pr.closed_by = caller.user
    pr.closed_by_user_id = caller.user.id if caller.user else None
    pr.close_source_branch = close
    _save(caller, pr)
    _activity(caller, pr, Activity.MERGED, strategy=strategy.value, commit=merged.commit)
    caller.audit("pullrequest.merge", target=_target(opened.view), id=pr.number,
                 strategy=strategy.value, commit=merged.commit)
    _emit(caller, repo, pr, "pullrequest:fulfilled", "pr:merged")
    if close:
        _close_source(caller, git, repo, pr, source_ref)
    return pr


def _close_source(
    caller: Caller, git: GitStore, repo: Repository, pr: PullRequest, ref: str
) -> None:
    """Delete the merged source branch as a REST branch deletion (the push check, CAS, the
    push's record); never the main branch, and only while it still holds what was merged."""
    current = git_reader.open_reader(git, repo.storage_name).ref_target(ref)
    if current is None or current != pr.source_commit or pr.source_branch == repo.mainbranch:
        return
    pushes.move_ref(caller, git, repo, RefUpdate(current, ZERO_ID, ref),
                    f"source branch of pull request #{pr.number} deleted after its merge")
