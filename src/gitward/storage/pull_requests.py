"""Queries of the pull-request aggregate: pull requests of a repository, their participants,
comments and activity. No access decisions here: the service decides what the caller sees."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gitward.storage.common import Page, Window, rows_page, scalars_page, storable
from gitward.storage.models import (
    PullRequest,
    PullRequestActivity,
    PullRequestComment,
    PullRequestCounter,
    PullRequestParticipant,
)
from gitward.storage.unit import Unit


class PullRequests:
    __slots__ = ("_unit",)

    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def next_number(self, repository_id: int) -> int:
        """The next number of a pull request in the repository: one statement that takes the
        counter row's lock (created at 1 the first time), so two creations never share one."""
        session = self._unit.session
        dialect = session.get_bind().dialect.name
        maker = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            maker(PullRequestCounter)
            .values(repository_id=repository_id, last=1)
            .on_conflict_do_update(
                index_elements=[PullRequestCounter.repository_id],
                set_={"last": PullRequestCounter.last + 1},
            )
            .returning(PullRequestCounter.last)
        )
        number = session.execute(statement).scalar_one()
        return int(number)

    def by_number(self, repository_id: int, number: int) -> PullRequest | None:
        return self._unit.session.scalar(
            select(PullRequest).where(
                PullRequest.repository_id == repository_id, PullRequest.number == number
            )
        )

    def of_repository(
        self, repository_id: int, states: Iterable[str] | None, newest_first: bool = True
    ) -> Sequence[PullRequest]:
        """The repository's pull requests in `states` (None: all), newest first (or oldest);
        the service filters them further (queries, roles) in memory."""
        statement = select(PullRequest).where(PullRequest.repository_id == repository_id)
        if states is not None:
            statement = statement.where(PullRequest.state.in_(list(states)))
        order = PullRequest.number.desc() if newest_first else PullRequest.number.asc()
        return self._unit.session.scalars(statement.order_by(order)).unique().all()

    def open_between(
        self, repository_id: int, source_branch: str, destination_branch: str
    ) -> PullRequest | None:
        if not (storable(source_branch) and storable(destination_branch)):
            return None
        return self._unit.session.scalar(
            select(PullRequest).where(
                PullRequest.repository_id == repository_id,
                PullRequest.state == "OPEN",
                PullRequest.source_branch == source_branch,
                PullRequest.destination_branch == destination_branch,
            )
        )

    def open_touching(self, repository_id: int, branches: Sequence[str]) -> Sequence[PullRequest]:
        """The open pull requests whose source or destination is one of `branches`, their
        rows locked until the unit ends (PostgreSQL's FOR UPDATE; SQLite's unit holds the
        write lock already): a push moving them cannot lose a race to a REST change."""
        names = [b for b in branches if storable(b)]
        if not names:
            return ()
        return self._unit.session.scalars(
            select(PullRequest)
            .where(
                PullRequest.repository_id == repository_id,
                PullRequest.state == "OPEN",
                PullRequest.source_branch.in_(names) | PullRequest.destination_branch.in_(names),
            )
            .order_by(PullRequest.number)
            .with_for_update(of=PullRequest)
            .execution_options(populate_existing=True)  # the versions as locked
        ).unique().all()

    # -- comments ---------------------------------------------------------------------------

    def comments(
        self, pr: PullRequest, window: Window, *, top_level: bool = False
    ) -> Page[PullRequestComment]:
        statement = select(PullRequestComment).where(
            PullRequestComment.pull_request_id == pr.id
        )
        if top_level:
            statement = statement.where(PullRequestComment.parent_id.is_(None))
        return scalars_page(self._unit.session, statement.order_by(PullRequestComment.id), window)

    def all_comments(self, pr: PullRequest) -> Sequence[PullRequestComment]:
        return self._unit.session.scalars(
            select(PullRequestComment)
            .where(PullRequestComment.pull_request_id == pr.id)
            .order_by(PullRequestComment.id)
        ).unique().all()

    def comment(self, pr: PullRequest, comment_id: int) -> PullRequestComment | None:
        return self._unit.session.scalar(
            select(PullRequestComment).where(
                PullRequestComment.pull_request_id == pr.id, PullRequestComment.id == comment_id
            )
        )

    def comment_count(self, pr: PullRequest) -> int:
        return int(self._unit.session.scalar(
            select(func.count()).where(
                PullRequestComment.pull_request_id == pr.id,
                PullRequestComment.deleted.is_(False),
            )
        ) or 0)

    def comment_counts(self, ids: Sequence[int]) -> dict[int, int]:
        """The comments (not deleted) of each pull request in `ids`, in one statement."""
        if not ids:
            return {}
        rows = self._unit.session.execute(
            select(PullRequestComment.pull_request_id, func.count())
            .where(
                PullRequestComment.pull_request_id.in_(list(ids)),
                PullRequestComment.deleted.is_(False),
            )
            .group_by(PullRequestComment.pull_request_id)
        ).all()
        counts = dict.fromkeys(ids, 0)
        counts.update({int(pr_id): int(n) for pr_id, n in rows})
        return counts

    def of_participant(
        self, user_id: int, states: Iterable[str] | None, roles: Iterable[str] | None,
        newest_first: bool = True,
    ) -> Sequence[PullRequest]:
        """Every repository's pull requests in which the user has one of `roles` (None: any),
        in `states` (None: all), newest first by creation; the service keeps those the
        caller may read."""
        statement = select(PullRequest).join(
            PullRequestParticipant, PullRequestParticipant.pull_request_id == PullRequest.id
        ).where(PullRequestParticipant.user_id == user_id)
        if roles is not None:
            statement = statement.where(PullRequestParticipant.role.in_(list(roles)))
        if states is not None:
            statement = statement.where(PullRequest.state.in_(list(states)))
        order = PullRequest.created_on.desc() if newest_first else PullRequest.created_on.asc()
        return self._unit.session.scalars(
            statement.order_by(order, PullRequest.id.desc() if newest_first
                               else PullRequest.id.asc())
        ).unique().all()

    # -- activity ---------------------------------------------------------------------------

    def activities(
        self, pr: PullRequest, window: Window, *, without: Iterable[str] = (),
        hide_deleted_comments: bool = False,
    ) -> Page[PullRequestActivity]:
        """Newest first, as both APIs list them; `without` those kinds, and (with
        `hide_deleted_comments`) without the comments deleted since."""
        statement = select(PullRequestActivity).where(
            PullRequestActivity.pull_request_id == pr.id
        )
        skipped = list(without)
        if skipped:
            statement = statement.where(PullRequestActivity.kind.not_in(skipped))
        if hide_deleted_comments:
            deleted = select(PullRequestComment.id).where(
                PullRequestComment.pull_request_id == pr.id,
                PullRequestComment.deleted.is_(True),
            )
            statement = statement.where(
                PullRequestActivity.comment_id.is_(None)
                | PullRequestActivity.comment_id.not_in(deleted)
            )
        statement = statement.order_by(PullRequestActivity.id.desc())
        return scalars_page(self._unit.session, statement, window)

    def repository_activities(
        self, repository_id: int, window: Window, *, without: Iterable[str] = ()
    ) -> Page[tuple[PullRequestActivity, PullRequest]]:
        """Every pull request's activity in a repository, newest first, with its pull
        request."""
        statement = (
            select(PullRequestActivity, PullRequest)
            .join(PullRequest, PullRequest.id == PullRequestActivity.pull_request_id)
            .where(PullRequest.repository_id == repository_id)
        )
        skipped = list(without)
        if skipped:
            statement = statement.where(PullRequestActivity.kind.not_in(skipped))
        statement = statement.order_by(PullRequestActivity.id.desc())
        page = rows_page(self._unit.session, statement, window)
        return Page([(row[0], row[1]) for row in page.items], page.has_more, page.total)
