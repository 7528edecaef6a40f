"""Build statuses: what CI servers report about a commit of a repository, one status per
(repository, commit, key) — reporting the same key again updates it (docs/build-statuses.md).

Access is the policy's (domain/permissions.py): reading needs `BUILD_STATUS_READ`, reporting
`BUILD_STATUS_WRITE` (read access, signed in, as on Bitbucket), and replacing a status that
someone else reported `BUILD_STATUS_OVERWRITE` (repository admin, as Bitbucket Cloud). The
commit must be in the repository. Every report is audited (`build-status.set`).

Bitbucket Server's repository-less API (`/rest/build-status/1.0/commits/{id}`) is answered
over every repository that holds the commit and that the caller may read (listing, stats) or
report to (reporting).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from gitward.domain.permissions import Action
from gitward.gitstore import reader as git_reader
from gitward.gitstore.store import GitStore
from gitward.services import events, validation
from gitward.services.caller import Caller, repository_target
from gitward.services.cloud_content import Opened, reading
from gitward.services.errors import BadRequest, NotFound
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import BuildStatus, Repository, utcnow
from gitward.storage.views import RepositoryView


class State(StrEnum):
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    INPROGRESS = "INPROGRESS"
    STOPPED = "STOPPED"


#: The states each surface accepts, and what each is stored as. Bitbucket Server calls a
#: stopped build CANCELLED; it answers STOPPED as CANCELLED (`SERVER_NAMES`). Server's UNKNOWN
#: is refused: no build is in no state, and Cloud has no name for it.
CLOUD_STATES: dict[str, State] = {state.value: state for state in State}
SERVER_STATES: dict[str, State] = {**CLOUD_STATES, "CANCELLED": State.STOPPED}
SERVER_NAMES: dict[State, str] = {**{s: s.value for s in State}, State.STOPPED: "CANCELLED"}

#: Longest values kept (Bitbucket Server's own limits for key and name).
MAX_KEY = 255
MAX_NAME = 255
MAX_URL = 2048
MAX_DESCRIPTION = 4096
MAX_REF = 1024
MAX_BUILD_NUMBER = 255

#: A commit id as clients send it: hex, abbreviated from 4 digits, up to SHA-256's 64.
_COMMIT_ID = re.compile(r"[0-9a-fA-F]{4,64}")
_FULL_COMMIT_ID = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")


class Surface(StrEnum):
    CLOUD = "cloud"
    SERVER = "server"  # `/rest/build-status/1.0` and `P/commits/{id}/builds`


@dataclass(frozen=True)
class Report:
    """A validated report of a build's status."""

    key: str
    state: State
    url: str
    name: str | None = None
    description: str | None = None
    ref: str | None = None
    build_number: str | None = None
    parent: str | None = None
    duration_ms: int | None = None
    tests: tuple[int, int, int] | None = None  # successful, failed, skipped


# -- input ------------------------------------------------------------------------------


def _optional_text(body: Mapping[str, Any], field: str, limit: int) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"The build status {field} must be a string.")
    if len(value) > limit:
        raise BadRequest(f"The build status {field} must be at most {limit} characters long.")
    if "\x00" in value or validation.has_lone_surrogate(value):
        raise BadRequest(f"The build status {field} must be text without NUL characters.")
    return value


def _url(value: object) -> str:
    if value is None or value == "":
        raise BadRequest("A build status url is required.")
    if not isinstance(value, str):
        raise BadRequest("The build status url must be a string.")
    if len(value) > MAX_URL:
        raise BadRequest(f"The build status url must be at most {MAX_URL} characters long.")
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.netloc
        or any(ord(c) <= 32 or ord(c) == 127 for c in value)
        or validation.has_lone_surrogate(value)
    ):
        raise BadRequest("The build status url must be an absolute http or https URL.")
    return value


def _state(value: object, accepted: Mapping[str, State]) -> State:
    if value is None:
        raise BadRequest("A build status state is required.")
    if isinstance(value, str) and value.upper() in accepted:
        return accepted[value.upper()]
    shown = value[:40] if isinstance(value, str) else type(value).__name__
    raise BadRequest(
        f"The build status state must be one of {', '.join(accepted)}, not {shown!r}."
    )


def _count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise BadRequest(f"testResults.{field} must be a non-negative integer.")
    return value


def parse_report(body: Mapping[str, Any], surface: Surface, *, extended: bool = False) -> Report:
    """A report from a JSON body: Cloud's `commitstatus` fields, or Server's (with
    `extended`, those of the newer `P/commits/{id}/builds` API too)."""
    key = validation.required_text(body.get("key"), "build status key", MAX_KEY)
    states = CLOUD_STATES if surface is Surface.CLOUD else SERVER_STATES
    report = Report(
        key=key,
        state=_state(body.get("state"), states),
        url=_url(body.get("url")),
        name=_optional_text(body, "name", MAX_NAME),
        description=_optional_text(body, "description", MAX_DESCRIPTION),
        ref=_optional_text(body, "refname" if surface is Surface.CLOUD else "ref", MAX_REF),
    )
    if not extended:
        return report
    duration = body.get("duration")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int) or not 0 <= duration < 2**62
    ):
        raise BadRequest("The build status duration must be a non-negative integer (ms).")
    tests = body.get("testResults")
    counts: tuple[int, int, int] | None = None
    if tests is not None:
        if not isinstance(tests, dict):
            raise BadRequest(
                "testResults must be an object {successful, failed, skipped}."
            )
        counts = (
            _count(tests.get("successful", 0), "successful"),
            _count(tests.get("failed", 0), "failed"),
            _count(tests.get("skipped", 0), "skipped"),
        )
    return replace(
        report,
        build_number=_optional_text(body, "buildNumber", MAX_BUILD_NUMBER),
        parent=_optional_text(body, "parent", MAX_REF),
        duration_ms=duration,
        tests=counts,
    )


def commit_id(opened: Opened, revision: str) -> str:
    """The full id of the commit `revision` names in the repository (a hex id, possibly
    abbreviated): 400 for anything else, 404 if the repository has no such commit."""
    if not _COMMIT_ID.fullmatch(revision):
        raise BadRequest(f"{revision[:80]!r} is not a commit id.")
    wanted = revision.lower()
    found = reading(lambda: opened.reader.commit(wanted)).id
    if not found.startswith(wanted):  # a branch of that name, which git would prefer
        raise NotFound(f"No commit {wanted} in this repository.")
    return found


def full_commit_id(revision: str) -> str:
    if not _FULL_COMMIT_ID.fullmatch(revision):
        raise BadRequest(f"{revision[:80]!r} is not a full commit id.")
    return revision.lower()


# -- reading ----------------------------------------------------------------------------


def statuses(
    caller: Caller, opened: Opened, revision: str, window: Window
) -> tuple[str, Page[BuildStatus]]:
    """The statuses of a commit of an opened repository (the commit's full id with them),
    first reported first."""
    commit = commit_id(opened, revision)
    return commit, caller.store.build_statuses.of_commit(opened.view.id, commit, window)


def status(caller: Caller, opened: Opened, revision: str, key: str) -> BuildStatus:
    """One status of a commit, by key; 404 if there is none."""
    commit = commit_id(opened, revision)
    found = caller.store.build_statuses.one(opened.view.id, commit, key)
    if found is None:
        raise NotFound(f"No build status with key {key[:80]!r} on commit {commit}.")
    return found


def _readable(caller: Caller, commit: str) -> list[BuildStatus]:
    rows = caller.store.build_statuses.of_commit_anywhere(commit)
    decided: dict[int, bool] = {}
    result = []
    for row in rows:
        allowed = decided.get(row.repository_id)
        if allowed is None:
            allowed = decided[row.repository_id] = caller.can(
                Action.BUILD_STATUS_READ, repository_target(row.repository)
            )
        if allowed:
            result.append(row)
    return result


def statuses_of_known_commit(
    caller: Caller, opened: Opened, commit: str, window: Window
) -> Page[BuildStatus]:
    """The statuses of a commit the repository is known to have (a pull request's source),
    for a caller who may read the repository's build statuses."""
    caller.require(Action.BUILD_STATUS_READ, repository_target(opened.view))
    return caller.store.build_statuses.of_commit(opened.view.id, commit, window)


def statuses_anywhere(caller: Caller, revision: str, window: Window) -> Page[BuildStatus]:
    """The statuses of a commit in every repository the caller may read (Server's
    repository-less API), first reported first. A commit nobody reported on (or one the
    caller cannot see) has none: an empty page."""
    return Page.of(_readable(caller, full_commit_id(revision)), window)


def stats_anywhere(caller: Caller, revision: str) -> dict[State, int]:
    """How many of those statuses are in each state."""
    counts = dict.fromkeys(State, 0)
    for row in _readable(caller, full_commit_id(revision)):
        counts[State(row.state)] += 1
    return counts


# -- reporting --------------------------------------------------------------------------


def _apply(row: BuildStatus, report: Report, caller: Caller) -> None:
    row.key = report.key
    row.state = report.state.value
    row.url = report.url
    row.name = report.name
    row.description = report.description
    row.ref = report.ref
    row.build_number = report.build_number
    row.parent = report.parent
    row.duration_ms = report.duration_ms
    row.tests_successful, row.tests_failed, row.tests_skipped = report.tests or (
        None, None, None
    )
    row.reported_by = caller.actor


def _store(
    caller: Caller, view: RepositoryView | Repository, commit: str, report: Report,
    existing: BuildStatus | None,
) -> tuple[BuildStatus, bool]:
    """Create or replace the status of `report.key`, audited. Replacing what another caller
    reported needs BUILD_STATUS_OVERWRITE."""
    if existing is not None and existing.reported_by != caller.actor:
        caller.require(Action.BUILD_STATUS_OVERWRITE, repository_target(view))
    created = existing is None
    now = utcnow()
    if existing is None:
        row = BuildStatus(repository_id=view.id, commit=commit, created_on=now)
        _apply(row, report, caller)
        row.updated_on = now
        caller.store.add(row)
        caller.store.flush()
    else:
        row = existing
        _apply(row, report, caller)
        row.updated_on = now
    caller.audit(
        "build-status.set",
        target=f"repository:{view.workspace.slug}/{view.slug}",
        commit=commit,
        key=report.key,
        state=report.state.value,
        created=created,
    )
    events.commit_status(caller, view, row, created)
    return row, created


def report_status(
    caller: Caller, opened: Opened, revision: str, body: Mapping[str, Any], surface: Surface,
    *, extended: bool = False,
) -> tuple[BuildStatus, bool]:
    """Report a build's status on a commit (POST): a new key creates a status, a known one
    replaces it. Returns the status and whether it was created."""
    commit = commit_id(opened, revision)
    report = parse_report(body, surface, extended=extended)
    existing = caller.store.build_statuses.one(opened.view.id, commit, report.key)
    return _store(caller, opened.view, commit, report, existing)


def update_status(
    caller: Caller, opened: Opened, revision: str, key: str, body: Mapping[str, Any]
) -> BuildStatus:
    """Cloud's PUT of one status: the fields sent change, the others stay; the key is the
    path's (a different `key` in the body is a 400). 404 if there is no such status."""
    commit = commit_id(opened, revision)
    existing = caller.store.build_statuses.one(opened.view.id, commit, key)
    if existing is None:
        raise NotFound(f"No build status with key {key[:80]!r} on commit {commit}.")
    if body.get("key") not in (None, key):
        raise BadRequest("The key of a build status cannot change.")
    merged: dict[str, Any] = {
        "key": existing.key,
        "state": existing.state,
        "url": existing.url,
        "name": existing.name,
        "description": existing.description,
        "refname": existing.ref,
    }
    merged.update({k: v for k, v in body.items() if k in merged and k != "key"})
    report = parse_report(merged, Surface.CLOUD)
    report = replace(
        report,
        build_number=existing.build_number,
        parent=existing.parent,
        duration_ms=existing.duration_ms,
        tests=None if existing.tests_successful is None else (
            existing.tests_successful, existing.tests_failed or 0, existing.tests_skipped or 0
        ),
    )
    row, _ = _store(caller, opened.view, commit, report, existing)
    return row


def report_anywhere(
    caller: Caller, git: GitStore, revision: str, body: Mapping[str, Any]
) -> list[BuildStatus]:
    """Server's repository-less report (`POST /rest/build-status/1.0/commits/{id}`): the
    status is reported on every repository the caller may report to that holds the commit;
    404 when there is none."""
    commit = full_commit_id(revision)
    candidates: Sequence[RepositoryView] = caller.permitted_site_repositories(
        Action.BUILD_STATUS_WRITE, EVERYTHING
    ).items
    holding = [view for view in candidates if _holds(git, view, commit)]
    if not holding:
        raise caller.not_found(f"No repository you can report to holds commit {commit}.")
    report = parse_report(body, Surface.SERVER)
    stored = []
    for view in holding:
        existing = caller.store.build_statuses.one(view.id, commit, report.key)
        stored.append(_store(caller, view, commit, report, existing)[0])
    return stored


def _holds(git: GitStore, view: RepositoryView, commit: str) -> bool:
    if not git.path_of(view.storage_name).is_dir():
        return False
    try:
        found = git_reader.open_reader(git, view.storage_name).commit(commit)
    except git_reader.NotFound:
        return False
    return found.id == commit
