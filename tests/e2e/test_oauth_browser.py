"""The authorize page in a real browser (Chromium driven by Playwright) against a real
`gitward serve`: sign in, allow or deny, land on the consumer's callback; then the code is
exchanged with authlib's client and the token clones with the real git client.

Needs Chromium and the `playwright` package (its own browser download is not used). Without
them the tests are skipped, unless GITWARD_TEST_CHROMIUM names the browser (as `.ci/run`
does), in which case they must run.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import GitwardServer, User

CHROMIUM = os.environ.get("GITWARD_TEST_CHROMIUM") or shutil.which("chromium")
SKIP_BROWSER = (
    "Browser tests need Chromium (apt-get install chromium) and the playwright package; "
    "set GITWARD_TEST_CHROMIUM to its path to require them"
)

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

if os.environ.get("GITWARD_TEST_CHROMIUM"):
    assert sync_playwright is not None, "GITWARD_TEST_CHROMIUM is set: install playwright"
    assert CHROMIUM and os.path.exists(CHROMIUM), f"GITWARD_TEST_CHROMIUM={CHROMIUM} is missing"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(sync_playwright is None or not CHROMIUM, reason=SKIP_BROWSER),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def callback() -> Iterator[Callback]:
    server = Callback()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def world(gitward_server: GitwardServer, callback: Callback) -> dict[str, Any]:
    """alice owns a repository with a commit and a public consumer with repository:write."""
    server = gitward_server
    alice = server.create_user()
    workspace, slug = server.create_repository(alice)
    server.seed(alice, workspace, slug)
    r = server.api("POST", f"/2.0/workspaces/{workspace}/oauth-consumers", auth=alice,
                   json={"name": "Deploy app", "is_private": False, "callback_url": callback.url,
                         "scopes": ["repository:write"]})
    assert r.status_code == 201, r.text
    return {"server": server, "alice": alice, "workspace": workspace, "slug": slug,
            "consumer": r.json(), "callback": callback}


class Callback:
    """The consumer's callback: a real HTTP server on loopback that records what reaches it."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        urls = self.urls

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/callback"):  # not the browser's /favicon.ico
                    urls.append(self.path)
                body = b"back at the app"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/callback"
        self.pattern = re.compile("^" + re.escape(self.url) + r"(\?|$)")
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def params(self) -> dict[str, str]:
        assert self.urls, "the browser never reached the callback"
        return {k: v[0] for k, v in parse_qs(urlsplit(self.urls[-1]).query).items()}


def _client(world: dict[str, Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from authlib.integrations.httpx_client import OAuth2Client
    return OAuth2Client(world["consumer"]["key"], token_endpoint_auth_method="none",
                        redirect_uri=world["callback"].url, code_challenge_method="S256")


def _page(browser: Browser) -> tuple[Page, list[str]]:
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    return page, console


def test_allow_in_the_browser_then_clone_with_the_token(browser, world, tmp_path):
    server, alice = world["server"], world["alice"]
    client = _client(world)
    verifier = "v" * 20 + os.urandom(16).hex()
    url, state = client.create_authorization_url(server.base_url + "/site/oauth2/authorize",
                                                 code_verifier=verifier)
    page, console = _page(browser)
    callback = world["callback"]
    page.goto(url)
    assert "Deploy app" in page.title()
    assert "repository:write" in page.inner_text("ul")
    page.fill("#username", alice.username)
    page.fill("#password", alice.password)
    with page.expect_navigation(url=callback.pattern):
        page.click("button[value=allow]")
    assert page.inner_text("body") == "back at the app"
    assert not [line for line in console if "Content Security Policy" in line], console
    params = callback.params
    assert params["state"] == state and params["code"].startswith("gwocd_")
    token = client.fetch_token(server.base_url + "/site/oauth2/access_token",
                               authorization_response=callback.url + "?"
                               + urlsplit(callback.urls[-1]).query,
                               code_verifier=verifier)
    assert token["scopes"] == "repository:write" and token["refresh_token"]
    clone = tmp_path / "clone"
    url = server.clone_url(world["workspace"], world["slug"],
                           User("x-token-auth", token["access_token"]))
    server.git("clone", "-q", url, str(clone))
    assert (clone / "README").read_text() == "hello\n"
    page.close()


def test_wrong_password_then_deny(browser, world):
    server, alice = world["server"], world["alice"]
    client = _client(world)
    url, state = client.create_authorization_url(server.base_url + "/site/oauth2/authorize",
                                                 code_verifier="w" * 43)
    page, _ = _page(browser)
    callback = world["callback"]
    seen = len(callback.urls)
    page.goto(url)
    page.fill("#username", alice.username)
    page.fill("#password", "not the password")
    page.click("button[value=allow]")
    page.wait_for_selector("[role=alert]")
    assert "Invalid" in page.inner_text("[role=alert]")
    assert page.input_value("#username") == alice.username
    assert len(callback.urls) == seen
    with page.expect_navigation(url=callback.pattern):
        page.click("button[value=deny]")
    params = callback.params
    assert params["error"] == "access_denied" and params["state"] == state
    assert "code" not in params and params["error_description"]
    page.close()


def test_the_page_is_never_framed(browser, world):
    server = world["server"]
    url, _ = _client(world).create_authorization_url(
        server.base_url + "/site/oauth2/authorize", code_verifier="f" * 43)
    page, _ = _page(browser)
    page.set_content(f'<iframe src="{url}"></iframe>')
    page.wait_for_timeout(500)
    assert len(page.frames) == 2
    assert "Deploy app" not in page.frames[1].content()
    page.close()
