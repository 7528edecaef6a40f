"""/docs works without internet access: the page and everything it loads come from here."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from gitward.runtime import Runtime
from gitward.web.app import create_app
from tests.asgi_client import AppClient


@pytest.fixture
def sqlite_client(sqlite_settings) -> Iterator[AppClient]:
    runtime = Runtime.open(sqlite_settings)
    with AppClient(create_app(runtime), raise_server_exceptions=False) as c:
        yield c
    runtime.close()


def test_docs_load_only_same_origin_assets(sqlite_client):
    r = sqlite_client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    # No absolute URL at all (no CDN, no validator badge, no favicon from elsewhere).
    assert not re.search(r"https?:|//[a-z]", html, re.IGNORECASE), html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 3, assets  # the script, the stylesheet, the icon
    for url in assets:
        assert url.startswith("/static/docs/"), url
        got = sqlite_client.get(url)
        assert got.status_code == 200, url
        assert len(got.content) > 1000, url
    kinds = {url.rsplit(".", 1)[1] for url in assets}
    assert kinds == {"js", "css", "png"}
    assert "'/openapi.json'" in html and '"validatorUrl": null' in html
    assert sqlite_client.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_swagger_ui_reads_openapi_3_1(sqlite_client):
    """The bundled Swagger UI is a 5.x (3.1 support began there): 4.x would render nothing."""
    js = sqlite_client.get("/static/docs/swagger-ui-bundle.js").text
    versions = set(re.findall(r'"(5\.\d+\.\d+)"', js))
    assert versions, "no Swagger UI 5.x version string in the bundle"


def test_unknown_assets_are_404(sqlite_client):
    assert sqlite_client.get("/static/docs/nothing.js").status_code == 404
    # The client resolves the dots itself, so this asks for /etc/passwd: a page (a repository
    # `passwd` of a workspace `etc`), which an anonymous caller is asked to sign in for, as
    # for any repository it cannot see. Never the file.
    r = sqlite_client.get("/static/docs/../../../etc/passwd", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert "root:" not in r.text
