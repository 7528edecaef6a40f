"""Queries of the build-status aggregate: what CI servers reported about commits, by
repository and commit (and by commit alone, for Bitbucket Server's repository-less API)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from gitward.storage.common import Page, Window, scalars_page, storable
from gitward.storage.models import BuildStatus
from gitward.storage.unit import Unit


class BuildStatuses:
    """Build statuses. No access decisions here: the service decides what the caller sees."""

    __slots__ = ("_unit",)

    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def one(self, repository_id: int, commit: str, key: str) -> BuildStatus | None:
        if not storable(key):
            return None
        return self._unit.session.scalar(
            select(BuildStatus).where(
                BuildStatus.repository_id == repository_id,
                BuildStatus.commit == commit,
                BuildStatus.key == key,
            )
        )

    def of_commit(self, repository_id: int, commit: str, window: Window) -> Page[BuildStatus]:
        """One repository's statuses of a commit, first reported first."""
        statement = (
            select(BuildStatus)
            .where(BuildStatus.repository_id == repository_id, BuildStatus.commit == commit)
            .order_by(BuildStatus.id)
        )
        return scalars_page(self._unit.session, statement, window)

    def of_commit_anywhere(self, commit: str) -> Sequence[BuildStatus]:
        """Every repository's statuses of a commit (with their repositories), oldest first:
        the caller filters them by what it may read."""
        return self._unit.session.scalars(
            select(BuildStatus).where(BuildStatus.commit == commit).order_by(BuildStatus.id)
        ).all()
