"""Queries of the webhook aggregate: hooks, the outbox of their deliveries, attempts; and the
worker's claim, which hands each due delivery to one worker at a time (docs/webhooks.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import aliased

from gitward.storage.common import Page, Window, scalars_page
from gitward.storage.models import Webhook, WebhookAttempt, WebhookDelivery
from gitward.storage.unit import Unit

PENDING = "pending"
DELIVERING = "delivering"
DELIVERED = "delivered"
FAILED = "failed"
#: States a delivery is still to be made in: it holds back its hook's later deliveries.
OPEN = (PENDING, DELIVERING)


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker claimed, with what posting it needs (read in the claiming unit)."""

    delivery_id: int
    request_uuid: str
    attempt: int
    event_key: str
    body: str
    hook_uuid: str
    hook_id: int
    surface: str
    url: str
    secret_sealed: str | None = field(repr=False)


class Webhooks:
    """Hooks and deliveries. No access decisions here: the service decides."""

    __slots__ = ("_unit",)

    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    # -- hooks ---------------------------------------------------------------------------

    def hooks_on(
        self, surface: str, window: Window, *, repository_id: int | None = None,
        workspace_id: int | None = None, project_id: int | None = None,
    ) -> Page[Webhook]:
        """The hooks one API created on one resource, oldest first."""
        statement = select(Webhook).where(
            Webhook.surface == surface,
            Webhook.repository_id.is_(None) if repository_id is None
            else Webhook.repository_id == repository_id,
            Webhook.workspace_id.is_(None) if workspace_id is None
            else Webhook.workspace_id == workspace_id,
            Webhook.project_id.is_(None) if project_id is None
            else Webhook.project_id == project_id,
        ).order_by(Webhook.id)
        return scalars_page(self._unit.session, statement, window)

    def by_uuid(self, uuid: str) -> Webhook | None:
        return self._unit.session.scalar(select(Webhook).where(Webhook.uuid == uuid))

    def by_id(self, hook_id: int) -> Webhook | None:
        return self._unit.session.get(Webhook, hook_id)

    def subscribers(
        self, repository_id: int, workspace_id: int, project_id: int | None
    ) -> Sequence[Webhook]:
        """The active hooks that hear of a repository's events: its own, its workspace's
        (Cloud) and its project's (Server)."""
        reach = [Webhook.repository_id == repository_id,
                 and_(Webhook.workspace_id == workspace_id, Webhook.repository_id.is_(None))]
        if project_id is not None:
            reach.append(Webhook.project_id == project_id)
        return self._unit.session.scalars(
            select(Webhook).where(Webhook.active.is_(True), or_(*reach)).order_by(Webhook.id)
        ).all()

    # -- deliveries ----------------------------------------------------------------------

    def deliveries_of(self, hook_id: int, window: Window) -> Page[WebhookDelivery]:
        """A hook's deliveries, newest first."""
        statement = (
            select(WebhookDelivery)
            .where(WebhookDelivery.hook_id == hook_id)
            .order_by(WebhookDelivery.id.desc())
        )
        return scalars_page(self._unit.session, statement, window)

    def delivery(self, hook_id: int, uuid: str) -> WebhookDelivery | None:
        return self._unit.session.scalar(
            select(WebhookDelivery).where(
                WebhookDelivery.hook_id == hook_id, WebhookDelivery.uuid == uuid
            )
        )

    def attempts_of(self, delivery_ids: Sequence[int]) -> dict[int, list[WebhookAttempt]]:
        found: dict[int, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
        if not delivery_ids:
            return found
        rows = self._unit.session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number, WebhookAttempt.id)
        )
        for row in rows:
            found[row.delivery_id].append(row)
        return found

    # -- the worker's claim --------------------------------------------------------------

    @staticmethod
    def _heads() -> Any:
        """Deliveries that may go out next: open, of an active hook (one switched off keeps
        its deliveries until it is switched on again), with no earlier open delivery of the
        same hook (a hook's events go out in order)."""
        d = WebhookDelivery
        earlier = aliased(WebhookDelivery)
        return and_(
            d.state.in_(OPEN),
            d.hook_id.in_(select(Webhook.id).where(Webhook.active.is_(True))),
            ~select(earlier.id)
            .where(earlier.hook_id == d.hook_id, earlier.id < d.id, earlier.state.in_(OPEN))
            .exists(),
        )

    def claim(
        self, worker: str, now: datetime, until: datetime, limit: int
    ) -> list[Claimed]:
        """Claim up to `limit` due deliveries for `worker` until `until`: each the earliest
        still-open delivery of its hook (so a hook's events go out in order), not claimed by
        anyone now (a claim that expired — a worker that died — is taken over).

        PostgreSQL: the candidates are locked `FOR UPDATE SKIP LOCKED`, so concurrent
        claimers pass each other by instead of queueing; on both databases the claim itself
        is a conditional UPDATE that must still find the row unclaimed, so two claimers
        never both take a delivery (on SQLite the unit holds the one write lock anyway)."""
        session = self._unit.session
        d = WebhookDelivery
        unclaimed = or_(d.claimed_until.is_(None), d.claimed_until < now)
        statement = (
            select(d.id)
            .where(self._heads(), d.next_attempt_at <= now, unclaimed)
            .order_by(d.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            statement = statement.with_for_update(skip_locked=True, of=d)
        claimed: list[Claimed] = []
        for delivery_id in session.scalars(statement).all():
            taken = session.execute(
                update(d)
                .where(d.id == delivery_id, d.state.in_(OPEN), unclaimed)
                .values(state=DELIVERING, claimed_by=worker, claimed_until=until,
                        attempts=d.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            if getattr(taken, "rowcount", 0) != 1:
                continue
            row = session.execute(
                select(d.uuid, d.attempts, d.event_key, d.body, Webhook.uuid, Webhook.id,
                       Webhook.surface, Webhook.url, Webhook.secret_sealed)
                .join(Webhook, Webhook.id == d.hook_id)
                .where(d.id == delivery_id)
            ).one()
            claimed.append(Claimed(delivery_id, *row))
        return claimed

    def finish(
        self, claimed: Claimed, worker: str, attempt: WebhookAttempt, state: str,
        next_attempt_at: datetime | None, now: datetime,
    ) -> bool:
        """Record an attempt, and — if the claim is still this worker's — the delivery's new
        state (`pending` again at `next_attempt_at`, `delivered` or `failed`). False if the
        claim had been taken over meanwhile (the attempt is recorded all the same)."""
        session = self._unit.session
        d = WebhookDelivery
        if session.get(d, claimed.delivery_id) is None:
            return False  # its hook was deleted meanwhile, and its deliveries with it
        session.add(attempt)
        values: dict[str, object] = {"state": state, "claimed_by": None, "claimed_until": None}
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if state in (DELIVERED, FAILED):
            values["finished_on"] = now
        result = session.execute(
            update(d)
            .where(d.id == claimed.delivery_id, d.claimed_by == worker,
                   d.attempts == claimed.attempt, d.state == DELIVERING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        session.flush()
        return bool(getattr(result, "rowcount", 0) == 1)

    def prune(self, before: datetime, limit: int = 1000) -> int:
        """Delete up to `limit` deliveries finished (delivered or given up) before `before`,
        with their attempts (the foreign key cascades). How many."""
        d = WebhookDelivery
        session = self._unit.session
        ids = session.scalars(
            select(d.id).where(d.state.in_((DELIVERED, FAILED)), d.finished_on < before)
            .order_by(d.id).limit(limit)
        ).all()
        if ids:
            session.execute(
                delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids))
                .execution_options(synchronize_session=False)
            )
            session.execute(
                delete(d).where(d.id.in_(ids)).execution_options(synchronize_session=False)
            )
        return len(ids)

    def next_due(self, now: datetime) -> datetime | None:
        """When the next delivery may be claimed (for the worker's sleep, and to take no
        write lock when nothing is due): the earliest due time of an unclaimed head, or the
        earliest expiry of a claimed one. Deliveries waiting behind an earlier one of their
        hook do not count: they are due when it is done."""
        d = WebhookDelivery
        session = self._unit.session
        unclaimed: datetime | None = session.scalar(
            select(d.next_attempt_at)
            .where(self._heads(), or_(d.claimed_until.is_(None), d.claimed_until < now))
            .order_by(d.next_attempt_at).limit(1)
        )
        claimed: datetime | None = session.scalar(
            select(d.claimed_until)
            .where(self._heads(), d.claimed_until >= now)
            .order_by(d.claimed_until).limit(1)
        )
        found = [t for t in (unclaimed, claimed) if t is not None]
        return min(found) if found else None
