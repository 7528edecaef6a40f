"""Fuzzing every operation of /openapi.json with schemathesis, in process (docs/testing.md).

The application is built as the other integration tests build it (a Runtime on a fresh copy
of the migrated SQLite template), seeded with a site administrator who owns a workspace, a
project and a repository with history, and two personal access tokens of theirs.
Schemathesis then reads `/openapi.json` from the application itself and sends each
operation a few generated requests — once with a token (Bearer: valid and invalid
examples) and once with the password (Basic: valid examples) — checking each answer:
never a 5xx, a status the operation documents, the documented content type and headers, a
body that matches the documented schema, and a 4xx for an invalid request. Afterwards the
credential must still sign in, so that no answer was a 401 for want of one.

Bounded and reproducible: `GITWARD_FUZZ_EXAMPLES` examples per operation (5 by default),
generated deterministically (Hypothesis' `derandomize`, no example database), so that CI
runs the same requests every time. Raise the number to fuzz longer locally.

Path parameters that name a resource are pinned to the seeded ones (otherwise nearly every
request would be a 404 before any body or query is read), `{token_id}` to the spare token;
the rest is generated. What is left out, and why, is in `EXCLUDED`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import Receive, Scope, Send

from gitward.config import Settings
from gitward.runtime import Runtime
from gitward.services.users import create_user
from gitward.web.app import create_app
from tests.conftest import FAST_ARGON2, NO_WORKER, TEST_HOSTS
from tests.integration.conftest import PASSWORD, basic, bearer

EXAMPLES = int(os.environ.get("GITWARD_FUZZ_EXAMPLES", "5"))

USER = "fuzzer"
WORKSPACE = "acme"
PROJECT = "PRJ"
REPOSITORY = "widget"

#: The seeded resources, for the path parameters that name one.
PINNED = {
    "workspace": WORKSPACE,
    "repo_slug": REPOSITORY,
    "slug": REPOSITORY,
    "project_key": PROJECT,
    "user_slug": USER,
    "selected_user": USER,
    # The seeded history: `main` with two commits, a file `a.txt`, a tag `v1`.
    "revision": "main",
    "spec": "main..v1",
    "path": "a.txt",
    "commit_id": "main",
}
#: The history pushed into the seeded repository (git fast-import), so that the content
#: operations answer content rather than "empty repository".
HISTORY = (
    "commit refs/heads/main\ncommitter T <t@example.com> 1700000000 +0000\n"
    "data 6\nfirst\nM 644 inline a.txt\ndata 4\none\n\n"
    "reset refs/tags/v1\nfrom refs/heads/main\n\n"
    "commit refs/heads/main\ncommitter T <t@example.com> 1700000100 +0000\n"
    "data 7\nsecond\nM 644 inline a.txt\ndata 8\none\ntwo\n\n"
)

#: Operations not fuzzed, and why: each would remove a seeded resource that every later
#: operation is pinned to, turning them all into 404s that check nothing. Re-seeding after
#: each example would cost more than the whole run; these deletions are tested directly
#: (test_api_repositories.py, test_api_projects.py, test_server_api.py).
EXCLUDED = {
    ("DELETE", "/2.0/repositories/{workspace}/{repo_slug}"),
    ("DELETE", "/2.0/workspaces/{workspace}/projects/{project_key}"),
    ("DELETE", "/rest/api/1.0/projects/{project_key}"),
    ("DELETE", "/rest/api/1.0/projects/{project_key}/repos/{repo_slug}"),
}

CHECKS = [
    negative_data_rejection,
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


class WithoutLifespan:
    """The application as schemathesis sees it: the fixture runs its lifespan (the git
    hooks' listener) itself, and stops it at the end of the module."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("the fixture runs the lifespan")
        await self.app(scope, receive, send)


class Seeded:
    def __init__(self, app: Any, token: str, spare: str) -> None:
        self.app = app
        #: The credential of the token run.
        self.token = token
        #: The id of a second token of the same user: `{token_id}` is pinned to it, so that
        #: rotating and deleting a token reach a real one, and never the run's own.
        self.spare = spare


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Seeded]:
    base = tmp_path_factory.mktemp("fuzz")
    shutil.copy(sqlite_template, base / "gitward.db")
    settings = Settings(
        data_dir=base / "data", database_url=f"sqlite:///{base / 'gitward.db'}",
        **FAST_ARGON2, **TEST_HOSTS, **NO_WORKER,
    )
    runtime = Runtime.open(settings)
    app = create_app(runtime)
    with runtime.unit_of_work() as store:
        create_user(store, runtime.passwords, username=USER, email=f"{USER}@example.com",
                    password=PASSWORD, is_site_admin=True)
    auth = basic(USER, PASSWORD)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/2.0/workspaces", json={"slug": WORKSPACE, "name": WORKSPACE}, headers=auth)
        assert r.status_code == 201, r.text
        r = client.post(f"/2.0/workspaces/{WORKSPACE}/projects",
                        json={"key": PROJECT, "name": "Project"}, headers=auth)
        assert r.status_code == 201, r.text
        r = client.post(f"/2.0/repositories/{WORKSPACE}/{REPOSITORY}",
                        json={"scm": "git", "project": {"key": PROJECT}}, headers=auth)
        assert r.status_code == 200, r.text
        bare = runtime.git.path_of(r.json()["uuid"].strip("{}") + ".git")
        subprocess.run(["git", "--git-dir", str(bare), "fast-import", "--quiet"],
                       input=HISTORY, text=True, check=True)
        tokens = []
        for name in ("fuzz", "spare"):
            r = client.put(f"/rest/access-tokens/1.0/users/{USER}", headers=auth,
                           json={"name": name, "permissions": ["PROJECT_ADMIN", "REPO_ADMIN"]})
            assert r.status_code == 200, r.text
            tokens.append(r.json())
        yield Seeded(WithoutLifespan(app), tokens[0]["token"], str(tokens[1]["id"]))
    runtime.close()


@pytest.fixture(scope="module")
def api(seeded: Seeded) -> Any:
    schema = schemathesis.openapi.from_asgi(
        # An explicit configuration: no schemathesis.toml of the machine's is read.
        "/openapi.json", seeded.app, config=SchemathesisConfig()
    )
    return schema.exclude(
        func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in EXCLUDED
    )


#: Per operation and mode: a fixed number of examples, the same ones every run (derandomized,
#: no example database), no deadline (the machine is shared). No shrinking, so that a failure
#: costs no more requests than a pass: the example that failed is reported as it was, with
#: its curl line. Health checks are off: an operation whose invalid examples are rare (most
#: of its input accepts any text) is slow to generate for, which is no failure of the server.
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _negatable(operation: Any) -> bool:
    """Has the operation input that an invalid example can break? Path parameters are
    strings that accept any text (or pinned), so only a query or a body counts."""
    return bool(list(operation.query) or list(operation.body))


def fuzz(api: Any, seeded: Seeded, headers: dict[str, str], *, invalid: bool) -> list[str]:
    """Every operation: valid examples, then (where there is input to break, and `invalid`)
    invalid ones. What failed, one entry per operation and mode."""
    failures: list[str] = []
    sent: set[str] = set()
    for result in api.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        pinned = {name: value for name, value in {**PINNED, "token_id": seeded.spare}.items()
                  if name in names}
        modes = [GenerationMode.POSITIVE]
        if invalid and _negatable(operation):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            strategy = operation.as_strategy(mode, path_parameters=pinned or None)

            @SETTINGS
            @given(case=strategy)
            def run(case: Any) -> None:
                sent.add(operation.label)
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable as exc:
                if mode is GenerationMode.POSITIVE:
                    failures.append(f"{operation.label}: no valid example ({exc})")
                # Otherwise every input left unpinned accepts any text: there is no invalid
                # example to send.
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
        if operation.label not in sent:
            failures.append(f"{operation.label}: no request was sent")
    return failures


def _still_signed_in(seeded: Seeded, headers: dict[str, str]) -> None:
    """The credential still works after the run: nothing fuzzed revoked it or changed the
    password, so every answer above was to a signed-in caller, not a 401."""
    client = TestClient(seeded.app)  # not entered: the fixture runs the lifespan
    r = client.get("/2.0/user", headers=headers)
    assert r.status_code == 200, r.text
    r = client.get(f"/2.0/repositories/{WORKSPACE}/{REPOSITORY}/src/main/a.txt",
                   headers=headers)
    assert r.status_code == 200 and r.text == "one\ntwo\n", r.text


def test_every_operation_with_a_token(api: Any, seeded: Seeded) -> None:
    headers = bearer(seeded.token)
    failures = fuzz(api, seeded, headers, invalid=True)
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
    _still_signed_in(seeded, headers)


def test_every_operation_with_a_password(api: Any, seeded: Seeded) -> None:
    headers = basic(USER, PASSWORD)
    failures = fuzz(api, seeded, headers, invalid=False)
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
    _still_signed_in(seeded, headers)
