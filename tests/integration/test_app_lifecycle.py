"""An application started and stopped leaves nothing running behind: its unit-of-work
threads (started by its first request) end with it."""

from __future__ import annotations

import threading

from gitward.web.app import create_app
from tests.asgi_client import AppClient


def _units() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("gitward-unit")}


def test_stopping_the_application_ends_its_unit_threads(runtime):
    before = _units()
    for _ in range(3):
        with AppClient(create_app(runtime), raise_server_exceptions=False) as client:
            assert client.get("/2.0/repositories").status_code == 200
            assert _units() - before  # the request ran in them
    assert _units() - before == set()
