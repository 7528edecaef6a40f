"""The basic path through the API on each database."""

from __future__ import annotations


def test_status(client):
    r = client.get("/status")
    assert r.status_code == 200
    assert r.json() == {"state": "RUNNING"}


def test_workspace_project_repository(world, client):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    repo = world.repository(alice, "acme", "widget", "PRJ")
    assert repo["full_name"] == "acme/widget"
    r = client.get("/2.0/repositories/acme/widget", headers=alice.auth)
    assert r.status_code == 200
    assert r.json()["project"]["key"] == "PRJ"
