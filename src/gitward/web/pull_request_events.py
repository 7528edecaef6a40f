"""The webhook events of pull requests, in both of Bitbucket's formats (web/events.py has the
envelope): built by services/pull_requests.py in the unit of work of each change.

Cloud members: `pullrequest`, and `approval` (approved, unapproved), `changes_request`
(changes requested or withdrawn), `comment` (comment events). Server members: `pullRequest`,
and `participant` + `previousStatus` (reviews), `comment` (+ `commentParentId`,
`previousComment`), `previousFromHash` (from_ref_updated), `previousTitle`,
`previousDescription`, `previousTarget` (modified).
"""

from __future__ import annotations

from typing import Any

from gitward.services.caller import Caller
from gitward.services.events import Event
from gitward.storage.models import (
    PullRequest,
    PullRequestComment,
    PullRequestParticipant,
    Repository,
    utcnow,
)
from gitward.web import events
from gitward.web.cloud_api import pull_requests as cloud
from gitward.web.cloud_api import render as cloud_render
from gitward.web.hosts import linking
from gitward.web.server_api import pull_requests as server

JSON = dict[str, Any]


def build(
    caller: Caller,
    repo: Repository,
    pr: PullRequest,
    cloud_key: str | None,
    server_key: str | None,
    *,
    participant: PullRequestParticipant | None = None,
    previous_status: str | None = None,
    comment: PullRequestComment | None = None,
    previous_text: str | None = None,
    changes: dict[str, Any] | None = None,
    previous_from_hash: str | None = None,
) -> Event:
    req = linking(caller.base_url or "")
    count = caller.store.pull_requests.comment_count(pr)
    cloud_members: JSON = {"pullrequest": cloud.pullrequest_json(req, pr, count)}
    server_members: JSON = {"pullRequest": server.pullrequest_json(req, pr, count)}
    if participant is not None:
        review = {"date": cloud_render.iso(utcnow()),
                  "user": cloud_render.user(req, participant.user)}
        if cloud_key in ("pullrequest:approved", "pullrequest:unapproved"):
            cloud_members["approval"] = {**review, "pullrequest": cloud.short_json(req, pr)}
        else:
            cloud_members["changes_request"] = {**review,
                                                "pullrequest": cloud.short_json(req, pr)}
        server_members["participant"] = server.participant_json(req, participant)
        server_members["previousStatus"] = previous_status
    if comment is not None:
        cloud_members["comment"] = cloud.comment_json(req, pr, comment)
        server_members["comment"] = server.comment_json(req, pr, comment)
        if comment.parent_id is not None:
            server_members["commentParentId"] = comment.parent_id
        if previous_text is not None:
            server_members["previousComment"] = previous_text
    if previous_from_hash is not None:
        server_members["previousFromHash"] = previous_from_hash
    if changes:
        if "title" in changes:
            server_members["previousTitle"] = changes["title"]["old"]
        if "description" in changes:
            server_members["previousDescription"] = changes["description"]["old"]
        if "destination" in changes:
            old = changes["destination"]["old"]
            server_members["previousTarget"] = {"id": f"refs/heads/{old}", "displayId": old,
                                                "type": "BRANCH"}
    return events.event(caller, repo, cloud_key, server_key, cloud_members, server_members)
