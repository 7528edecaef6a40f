"""Notices about credentials (docs/notices.md): used from a new address or by a new client,
about to expire; each an audit event, a notice on the user's page and a mail received by a
real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from gitward.services import notices
from gitward.storage.models import AuditEvent, Notification, utcnow
from gitward.web.app import create_app
from gitward.web.background import mail_pending, notices_once
from tests.asgi_client import AppClient
from tests.integration.conftest import bearer
from tests.integration.web_helpers import post, sign_in

REPO = "/2.0/repositories/acme/widget"
PATS = "/rest/access-tokens/1.0/users/alice"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def settings(settings, inbox):
    return settings.with_overrides(
        smtp_url=f"smtp://127.0.0.1:{inbox[1]}", mail_from="gitward@example.com"
    )


@pytest.fixture
def setup(world, client):
    client.follow_links = False
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    return alice


def from_address(runtime, address: str) -> AppClient:
    return AppClient(create_app(runtime), raise_server_exceptions=False,
                      client=(address, 40000))


def pat(client, alice, **extra) -> tuple[str, str]:
    r = client.put(PATS, json={"name": "deploy", "permissions": ["REPO_READ"], **extra},
                   headers=alice.auth)
    assert r.status_code == 200, r.text
    return r.json()["id"], r.json()["token"]


def rows(runtime, model, *where):
    with runtime.unit_of_work() as store:
        return list(store.open().scalars(select(model).where(*where).order_by(model.id)))


def test_a_new_address_is_audited_noticed_and_mailed(runtime, setup, inbox):
    token_id, secret = pat(from_address(runtime, "10.0.0.1"), setup)
    git = {"User-Agent": "git/2.39.2", **bearer(secret)}
    first = from_address(runtime, "10.0.0.1")
    assert first.get(REPO, headers=git).status_code == 200
    assert first.get(REPO, headers=git).status_code == 200
    # The first use sets where it is used from: nothing to tell.
    assert rows(runtime, Notification) == []
    other = from_address(runtime, "10.9.9.9")
    assert other.get(REPO, headers=git).status_code == 200
    (notice,) = rows(runtime, Notification)
    assert notice.kind == notices.NEW_ADDRESS
    assert "\u201cdeploy\u201d was used from a new address" in notice.subject
    assert "10.9.9.9" in notice.body and "Client: git" in notice.body
    (event,) = rows(runtime, AuditEvent, AuditEvent.action == "credential.new-address")
    assert event.target == f"personal_access_token:{token_id}"
    assert event.client_ip == "10.9.9.9"
    assert secret not in str(event.details) and secret not in notice.body
    assert mail_pending(runtime) == 1
    messages = inbox[0].messages
    (mail,) = messages
    assert mail["To"] == "alice@example.com" and mail["From"] == "gitward@example.com"
    assert mail["Subject"] == notice.subject
    assert "10.9.9.9" in mail.get_content()
    assert mail_pending(runtime) == 0  # mailed once
    # the same address again, or the same client in a new version: nothing new
    assert other.get(REPO, headers={**git, "User-Agent": "git/2.40.0"}).status_code == 200
    assert len(rows(runtime, Notification)) == 1


def test_a_new_client_is_noticed(runtime, setup):
    _, secret = pat(from_address(runtime, "10.0.0.1"), setup)
    c = from_address(runtime, "10.0.0.1")
    assert c.get(REPO, headers={"User-Agent": "git/2.39.2", **bearer(secret)}).status_code == 200
    assert c.get(REPO, headers={"User-Agent": "curl/8.5.0", **bearer(secret)}).status_code == 200
    (notice,) = rows(runtime, Notification)
    assert notice.kind == notices.NEW_CLIENT
    assert "used by curl" in notice.body
    assert rows(runtime, AuditEvent, AuditEvent.action == "credential.new-client")


def test_sightings_survive_the_process(runtime, setup):
    """A new process (an empty memory of sightings) finds known ones in the database."""
    _, secret = pat(from_address(runtime, "10.0.0.1"), setup)
    c = from_address(runtime, "10.0.0.1")
    assert c.get(REPO, headers={"User-Agent": "git/2", **bearer(secret)}).status_code == 200
    runtime.sightings = notices.Sightings()
    assert c.get(REPO, headers={"User-Agent": "git/2", **bearer(secret)}).status_code == 200
    assert rows(runtime, Notification) == []


def test_expiry_is_noticed_a_week_and_a_day_ahead_once_each(runtime, setup, inbox):
    _, _ = pat(from_address(runtime, "10.0.0.1"), setup, expiryDays=5)
    with runtime.unit_of_work() as store:
        assert notices.expiry_sweep(store) == 1
        assert notices.expiry_sweep(store) == 0  # once, whoever sweeps again
    (week,) = rows(runtime, Notification)
    assert week.kind == notices.EXPIRING and "expires in 7 days" in week.subject
    with runtime.unit_of_work() as store:
        later = utcnow() + timedelta(days=4, hours=12)
        assert notices.expiry_sweep(store, now=later) == 1
        assert notices.expiry_sweep(store, now=later) == 0
    assert "expires in 1 day" in rows(runtime, Notification)[-1].subject
    assert len(rows(runtime, AuditEvent, AuditEvent.action == "credential.expiry-notice")) == 2
    assert notices_once(runtime) == 2
    assert sorted(m["Subject"] for m in inbox[0].messages) == sorted(
        n.subject for n in rows(runtime, Notification)
    )


def test_tokens_far_from_expiry_or_without_one_are_not_noticed(runtime, setup):
    pat(from_address(runtime, "10.0.0.1"), setup)
    pat(from_address(runtime, "10.0.0.1"), setup, expiryDays=30)
    with runtime.unit_of_work() as store:
        assert notices.expiry_sweep(store) == 0


def test_mail_waits_for_the_relay_and_is_claimed_once(runtime, setup, inbox):
    _, _ = pat(from_address(runtime, "10.0.0.1"), setup, expiryDays=2)
    with runtime.unit_of_work() as store:
        notices.expiry_sweep(store)
    relay = runtime.settings.smtp_url
    runtime.settings = runtime.settings.with_overrides(smtp_url=f"smtp://127.0.0.1:{_free_port()}")
    assert mail_pending(runtime) == 0  # the relay is down: kept, with the reason
    (notice,) = rows(runtime, Notification)
    assert notice.mailed_on is None and notice.mail_error and notice.mail_attempts == 1
    # a claim holds the notice from another mailer until it lapses
    with runtime.unit_of_work() as store:
        assert notices.claim_mail(store).ids == [notice.id]
    with runtime.unit_of_work() as store:
        assert notices.claim_mail(store).ids == []
    with runtime.unit_of_work() as store:
        lapsed = utcnow() + notices.MAIL_CLAIM + timedelta(seconds=1)
        assert notices.claim_mail(store, now=lapsed).ids == [notice.id]
        store.notices.settle_mail([notice.id], None, "test")
    runtime.settings = runtime.settings.with_overrides(smtp_url=relay)
    assert mail_pending(runtime) == 1
    assert len(inbox[0].messages) == 1


def test_the_notifications_page(client, runtime, setup):
    _, _ = pat(client, setup, expiryDays=3)
    with runtime.unit_of_work() as store:
        notices.expiry_sweep(store)
    sign_in(client, setup)
    page = client.get("/account/notifications")
    assert page.status_code == 200
    assert "expires in 7 days" in page.text and ">new</span>" in page.text
    assert post(client, "/account/notifications/read",
                page="/account/notifications").status_code == 303
    page = client.get("/account/notifications?notice=read")
    assert "Every notice is marked read" in page.text
    assert ">new</span>" not in page.text, page.text


@pytest.mark.parametrize(
    ("agent", "client"),
    [("git/2.39.2", "git"), ("python-requests/2.32.3", "python-requests"),
     ("Mozilla/5.0 (X11)", "mozilla"), ("", None), (None, None), ("  ", None),
     ("((", None)],
)
def test_clients_are_named_by_their_product(agent, client):
    assert notices.client_of(agent) == client
