"""A repository's webhooks in the web interface: list, create (checked as the API checks),
a hook's deliveries with their attempts, redeliver, delete; only for repository admins."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest

from gitward.config import Settings
from tests.integration.test_webhooks import deliveries, fill
from tests.integration.web_helpers import post, sign_in
from tests.integration.webhook_helpers import Receiver

PAGE = "/acme/widget/settings/webhooks"
HOOKS = "/2.0/repositories/acme/widget/hooks"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, outbound_allowed_networks=("127.0.0.0/8",), webhook_poll_seconds=0.05,
        webhook_backoff_seconds=0.05, webhook_backoff_max_seconds=0.2, webhook_max_attempts=3,
        webhook_timeout_seconds=2.0, webhook_worker=True,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def acme(world, client):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "P")
    world.repository(alice, "acme", "widget", "P")
    return alice


def test_create_list_deliver_redeliver_and_delete(client, world, acme, receiver):
    commits = fill(world)
    sign_in(client, acme)
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "no webhooks yet" in page.text and 'value="repo:push"' in page.text
    r = post(client, PAGE, {"description": "CI", "url": receiver.url, "event": ["repo:push"],
                            "active": "on", "secret": "s3cret"})
    assert r.status_code == 303, r.text
    hook_path = r.headers["location"].split("?")[0]
    # the API sees the same hook, its secret set and never shown
    (hook,) = client.get(HOOKS, headers=acme.auth).json()["values"]
    assert hook["description"] == "CI" and hook["events"] == ["repo:push"]
    assert hook["secret_set"] is True and "s3cret" not in client.get(hook_path).text
    # a push (a branch created over REST) is delivered and listed with its attempt
    r = client.post("/2.0/repositories/acme/widget/refs/branches", headers=acme.auth,
                    json={"name": "feature", "target": {"hash": commits[-1]}})
    assert r.status_code == 201, r.text
    receiver.wait(1)
    # the attempt is recorded just after the receiver answered: waited for through the API
    # (its state says what happened if it never comes), up to 30 s
    deadline = time.monotonic() + 30
    listed = deliveries(client, acme.auth, hook)
    while listed[0]["state"] != "delivered" and time.monotonic() < deadline:
        time.sleep(0.05)
        listed = deliveries(client, acme.auth, hook)
    assert listed[0]["state"] == "delivered", (listed, receiver.requests)
    shown = client.get(hook_path)
    assert "repo:push" in shown.text and "HTTP 200" in shown.text and "delivered" in shown.text
    delivery = shown.text.split('id="delivery-', 1)[1].split('"', 1)[0]
    r = post(client, f"{hook_path}/deliveries/{delivery}/redeliver", page=hook_path)
    assert r.status_code == 303
    again = receiver.wait(2)
    assert again[1].body == again[0].body
    assert "redelivery" in client.get(hook_path).text
    # delete: gone from the page and the API
    r = post(client, f"{hook_path}/delete", page=hook_path)
    assert r.status_code == 303
    assert client.get(HOOKS, headers=acme.auth).json()["values"] == []
    assert "no webhooks yet" in client.get(PAGE).text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "http://10.1.2.3/hook", "event": ["repo:push"]}, "private or link-local"),
        ({"url": "ftp://example.com/", "event": ["repo:push"]}, "http:// or https://"),
        ({"url": "https://user:pw@example.com/", "event": ["repo:push"]}, "user name"),
        ({"url": "http://127.0.0.1:9/hook", "event": []}, "events must be"),
        ({"url": "http://127.0.0.1:9/hook", "event": ["repo:nope"]}, "Unknown event"),
    ],
)
def test_bad_input_is_the_forms_error(client, acme, fields, message):
    sign_in(client, acme)
    r = post(client, PAGE, {"description": "x", **fields})
    assert r.status_code == 400
    assert message in r.text
    assert client.get(HOOKS, headers=acme.auth).json()["values"] == []


def test_only_repository_admins_see_the_pages(client, world, acme):
    bob = world.user("bob")
    world.grant_repo(acme, "acme", "widget", "bob", "write")
    sign_in(client, bob)
    assert client.get(PAGE).status_code in (403, 404)
    r = client.get("/acme/widget")
    assert r.status_code == 200 and "settings/webhooks" not in r.text
    assert client.get("/acme/widget/settings/webhooks/00000000-0000-0000-0000-000000000000"
                      ).status_code in (403, 404)
