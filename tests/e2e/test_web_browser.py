"""The web interface in a real browser (Debian's Chromium driven by Playwright) against a
real `gitward serve`, with the real git client using what the pages create.

Screenshots of the main pages are written to tests/e2e/screenshots/ (not committed) for a
person to look at. Accessibility is checked with axe-core (npm), injected into each page:
`npm install --prefix .cache/npm axe-core` (or GITWARD_TEST_AXE naming axe.min.js); without
it that check is skipped with the reason, unless GITWARD_TEST_AXE is set.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.e2e.conftest import GitwardServer, User, project_key
from tests.e2e.test_oauth_browser import CHROMIUM, SKIP_BROWSER, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).resolve().parent / "screenshots"
AXE = Path(os.environ.get("GITWARD_TEST_AXE")
           or ROOT / ".cache/npm/node_modules/axe-core/axe.min.js")
if os.environ.get("GITWARD_TEST_AXE"):
    assert AXE.is_file(), f"GITWARD_TEST_AXE={AXE} is missing"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(sync_playwright is None or not CHROMIUM, reason=SKIP_BROWSER),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def world(gitward_server: GitwardServer) -> dict[str, Any]:
    """alice owns workspace/P/slug (a commit on main); bob is a plain user."""
    server = gitward_server
    alice = server.create_user()
    workspace, slug = server.create_repository(alice)
    server.seed(alice, workspace, slug)
    server.create_repository(alice, workspace=workspace, slug="public-site", private=False)
    return {"server": server, "alice": alice, "workspace": workspace, "slug": slug}


class Tab:
    """A browser context of its own (its own cookies) with one page, recording CSP reports."""

    def __init__(self, browser: Any, server: GitwardServer, width: int = 1200) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.server = server
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(message.text))

    def go(self, path: str) -> Any:
        return self.page.goto(self.server.base_url + path)

    def sign_in(self, user: User, otp: str | None = None, *, expect_ok: bool = True) -> None:
        self.go("/login")
        self.page.fill("#username", user.username)
        self.page.fill("#password", user.password)
        if otp is not None:
            self.page.fill("#otp", otp)
        self.page.click("main button[type=submit]")
        self.page.wait_for_load_state()
        if expect_ok:
            assert "/login" not in self.page.url, self.page.inner_text("main")

    def submit(self, form: str) -> None:
        with self.page.expect_navigation():
            self.page.click(f"{form} button[type=submit]")

    def secret(self) -> str:
        text = self.page.inner_text("#new-secret").strip()
        assert "not be shown again" in self.page.inner_text(".secret") or \
            "only time it is shown" in self.page.inner_text(".secret")
        return text

    def shot(self, name: str) -> None:
        SHOTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def no_csp_violations(self) -> None:
        bad = [line for line in self.console if "Content Security Policy" in line]
        assert not bad, bad

    def close(self) -> None:
        self.context.close()


def _axe(tab: Tab) -> list[dict[str, Any]]:
    """Critical axe-core violations of the page (axe evaluated through the DevTools protocol,
    which the page's CSP does not govern)."""
    tab.page.evaluate(AXE.read_text() + "\n;undefined")
    result: list[dict[str, Any]] = tab.page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'critical')
            .map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target)}))"""
    )
    return result


def _git_url(server: GitwardServer, world: dict[str, Any], username: str, secret: str) -> str:
    return server.clone_url(world["workspace"], world["slug"], User(username, secret))


def _push(server: GitwardServer, clone: Path, name: str) -> Any:
    (clone / name).write_text(name + "\n")
    server.git("add", name, cwd=clone)
    server.git("commit", "-qm", name, cwd=clone)
    return server.git("push", "-q", "origin", "HEAD:main", cwd=clone, check=False)


def test_personal_access_token_lifecycle(browser, world, tmp_path):
    server, alice = world["server"], world["alice"]
    tab = Tab(browser, server)
    tab.sign_in(alice)
    tab.go("/account/personal-access-tokens")
    assert "no personal access tokens yet" in tab.page.inner_text("main")
    tab.shot("personal-access-tokens-empty")
    tab.page.fill("#new-name", "laptop")
    tab.page.check("#new-project-PROJECT_READ")
    tab.page.check("#new-repo-REPO_WRITE")
    # The picker shows the rule: with project write, repository read is struck out.
    tab.page.check("#new-project-PROJECT_WRITE")
    style = tab.page.eval_on_selector("label.repo-REPO_READ", "e => getComputedStyle(e).pointerEvents")
    assert style == "none"
    tab.page.check("#new-project-PROJECT_READ")
    tab.submit("form.create")
    secret = tab.secret()
    assert secret.startswith("gwpat_")
    tab.shot("personal-access-token-created")
    tab.no_csp_violations()
    # Shown once: the list never shows it again.
    tab.go("/account/personal-access-tokens")
    assert secret not in tab.page.content()
    row = tab.page.inner_text("table tbody tr")
    assert "PROJECT_READ" in row and "REPO_WRITE" in row
    clone = tmp_path / "pat"
    server.git("clone", "-q", _git_url(server, world, alice.username, secret), str(clone))
    assert _push(server, clone, "one").returncode == 0
    # Modify it to read-only: the next push is refused.
    tab.page.click("td.actions details summary")
    token_row = tab.page.locator("table tbody tr").first
    token_row.locator("input[value='']").first.check()
    token_row.locator("input[value=REPO_READ]").check()
    with tab.page.expect_navigation():
        token_row.locator("form.picker-form button[type=submit]").click()
    assert "Saved" in tab.page.inner_text("[role=status]")
    assert "REPO_WRITE" not in tab.page.inner_text("table tbody tr")
    refused = _push(server, clone, "two")
    assert refused.returncode != 0, refused.stdout
    assert server.git("fetch", "-q", cwd=clone, check=False).returncode == 0
    # Its usage: what it was used for, what it needs (counts are the serving process's own
    # and what the others have written: tests/integration/test_credential_usage.py).
    tab.page.click("details.usage summary")
    assert "Needs:" in tab.page.inner_text("details.usage")
    tab.shot("personal-access-token-usage")
    # Revoke: nothing works with it any more.
    with tab.page.expect_navigation():
        tab.page.click("table tbody tr form:has(button.danger) button")
    assert "Revoked" in tab.page.inner_text("[role=status]")
    assert server.git("fetch", "-q", cwd=clone, check=False).returncode != 0
    tab.close()


def test_app_password_and_repository_token(browser, world, tmp_path):
    server, alice = world["server"], world["alice"]
    tab = Tab(browser, server)
    tab.sign_in(alice)
    tab.go("/account/app-passwords")
    tab.page.fill("#new-label", "ci")
    tab.page.check("#new-scope-repository")
    tab.submit("form.create")
    app = tab.secret()
    assert app.startswith("gwapp_")
    tab.shot("app-password-created")
    clone = tmp_path / "app"
    server.git("clone", "-q", _git_url(server, world, alice.username, app), str(clone))
    refused = _push(server, clone, "by-app")  # the scope is read only
    assert refused.returncode != 0
    with tab.page.expect_navigation():
        tab.page.click("table tbody tr button.danger")
    assert server.git("fetch", "-q", cwd=clone, check=False).returncode != 0
    # A repository access token with write: push works until it is revoked.
    path = f"/{world['workspace']}/{world['slug']}/settings/access-tokens"
    tab.go(path)
    assert "No access tokens yet" in tab.page.inner_text("main")
    tab.page.fill("#new-name", "deploy-bot")
    tab.page.check("#new-scope-repository-write")
    tab.submit("form.create")
    token = tab.secret()
    assert token.startswith("gwrep_")
    tab.shot("repository-access-token-created")
    clone = tmp_path / "rep"
    server.git("clone", "-q", _git_url(server, world, "x-token-auth", token), str(clone))
    assert _push(server, clone, "by-bot").returncode == 0
    with tab.page.expect_navigation():
        tab.page.click("table tbody tr button.danger")
    assert "Revoked" in tab.page.inner_text("[role=status]")
    assert server.git("fetch", "-q", cwd=clone, check=False).returncode != 0
    tab.close()


def test_api_token_created_used_by_git_and_revoked(browser, world, tmp_path):
    server, alice = world["server"], world["alice"]
    tab = Tab(browser, server)
    tab.sign_in(alice)
    tab.go("/account/api-tokens")
    assert "You have no API tokens yet" in tab.page.inner_text("main")
    tab.page.fill("#new-name", "laptop")
    tab.page.check("#new-scope-read-repository-bitbucket")
    tab.page.check("#new-scope-write-repository-bitbucket")
    tab.page.select_option("#new-expiry", "90")
    tab.page.fill("#new-allowed-ips", "127.0.0.0/8\n::1/128")
    tab.submit("form.create")
    token = tab.secret()
    assert token.startswith("gwapi_")
    assert "127.0.0.0/8" in tab.page.inner_text("table")
    tab.shot("api-token-created")
    clone = tmp_path / "api"
    server.git("clone", "-q", _git_url(server, world, "x-bitbucket-api-token-auth", token),
               str(clone))
    assert _push(server, clone, "by-api-token").returncode == 0
    with tab.page.expect_navigation():
        tab.page.click("table tbody tr button.danger")
    assert "Revoked" in tab.page.inner_text("[role=status]")
    assert server.git("fetch", "-q", cwd=clone, check=False).returncode != 0
    tab.no_csp_violations()
    tab.close()


def test_admin_revokes_a_users_token_and_cannot_create_one(browser, world):
    server = world["server"]
    bob = server.create_user()
    r = server.api("PUT", f"/rest/access-tokens/1.0/users/{bob.username}", auth=bob,
                   json={"name": "bobs-token", "permissions": ["REPO_READ"]})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    tab = Tab(browser, server)
    tab.sign_in(server.admin)
    tab.go("/admin/users")
    tab.shot("admin-users")
    with tab.page.expect_navigation():
        tab.page.click(f"a[href='/admin/users/{bob.username}']")
    tab.shot("admin-user")
    with tab.page.expect_navigation():
        tab.page.click(f"main a[href='/admin/users/{bob.username}/personal-access-tokens']")
    body = tab.page.inner_text("main")
    assert "bobs-token" in body and "Only" in body
    assert tab.page.locator("form.create").count() == 0
    assert tab.page.locator("#new-name").count() == 0
    tab.shot("admin-user-tokens")
    with tab.page.expect_navigation():
        tab.page.click("table tbody tr button.danger")
    assert "Revoked" in tab.page.inner_text("[role=status]")
    assert server.api("GET", "/2.0/user", headers={"Authorization": f"Bearer {token}"}
                      ).status_code == 401
    # The revocation is in the audit log, newest first, found by its action.
    tab.go("/admin/users")
    with tab.page.expect_navigation():
        tab.page.click("nav.sub a:text('Audit log')")
    tab.page.fill("#f-action", "pat.revoke")
    with tab.page.expect_navigation():
        tab.page.click("form.filters button[type=submit]")
    first = tab.page.locator("table.audit tbody tr").first
    assert "pat.revoke" in first.inner_text() and bob.username in first.inner_text()
    assert token not in tab.page.content()
    tab.shot("admin-audit")
    tab.close()


def test_sign_in_with_two_step_and_refusals(browser, world):
    server = world["server"]
    carol = server.create_user()
    tab = Tab(browser, server)
    # A token typed as the password is refused.
    r = server.api("PUT", f"/rest/access-tokens/1.0/users/{carol.username}", auth=carol,
                   json={"name": "t", "permissions": ["REPO_READ"]})
    tab.sign_in(User(carol.username, r.json()["token"]), expect_ok=False)
    assert "cannot sign in to the web interface" in tab.page.inner_text("[role=alert]")
    tab.shot("sign-in-refused")
    # Sign in, enrol in two-step verification, confirm.
    tab.sign_in(carol)
    tab.go("/account/two-step")
    tab.submit("form.narrow")
    assert tab.page.locator("svg.qr").count() == 1
    seed = tab.page.inner_text("#seed").strip()
    codes = tab.page.inner_text("#new-secret").split()
    assert len(codes) >= 8
    tab.shot("two-step-enrol")
    totp = pyotp.TOTP(seed)
    tab.page.fill("#confirm-code", totp.now())
    tab.submit("form.narrow")
    assert "Two-step verification is on" in tab.page.inner_text("[role=status]")
    tab.go("/account/sessions")
    tab.shot("sessions")
    with tab.page.expect_navigation():
        tab.page.click("header form.signout button")
    # Password alone: asked for the code.
    tab.sign_in(carol, expect_ok=False)
    assert "enter the code" in tab.page.inner_text("[role=alert]")
    tab.shot("sign-in-two-step")
    tab.sign_in(carol, otp=totp.at(time.time() + 30))
    assert "Sign out" in tab.page.inner_text("header")
    tab.close()


class Elsewhere:
    """A page on another origin (another port of this host: the same site, so SameSite=Lax
    cookies go with its POST) with a form aimed at Gitward and no csrf_token."""

    def __init__(self, target: str) -> None:
        body = (f'<!DOCTYPE html><form method="post" action="{target}">'
                '<input name="label" value="stolen"><input name="scope" value="repository">'
                '<button id="go">win a prize</button></form>').encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_cross_site_post_is_403_and_a_cookie_alone_is_anonymous(browser, world):
    server = world["server"]
    dave = server.create_user()
    tab = Tab(browser, server)
    tab.sign_in(dave)
    elsewhere = Elsewhere(server.base_url + "/account/app-passwords")
    try:
        tab.page.goto(elsewhere.url)
        with tab.page.expect_navigation():
            tab.page.click("#go")
        assert "csrf" in tab.page.content().lower() or "another site" in tab.page.content()
        response_status = tab.page.evaluate("() => document.title")
        assert "Not allowed" in response_status
    finally:
        elsewhere.close()
    listing = server.api("GET", "/2.0/user/app-passwords", auth=dave)
    assert listing.json()["values"] == []
    # The browser holds a live session cookie, and /2.0 treats it as anonymous.
    cookies = {c["name"]: c["value"] for c in tab.context.cookies()}
    assert cookies["gitward_session"].startswith("gwses_")
    # The context's own requests carry its cookies (a navigation would stop at the Basic
    # challenge, which the headless browser cannot answer).
    answer = tab.context.request.get(server.base_url + "/2.0/user")
    assert answer.status == 401 and answer.json()["type"] == "error"
    with httpx.Client(base_url=server.base_url) as client:
        alone = client.get("/2.0/user", cookies={"gitward_session": cookies["gitward_session"]})
        nothing = client.get("/2.0/user")
    assert (alone.status_code, alone.json()) == (nothing.status_code, nothing.json())
    tab.close()


README = """# Widget

Some *emphasis* and a [link](https://example.com/docs).

<script>document.title = "owned"</script>
<img src="x" onerror="document.title='owned'">

[bad](javascript:alert(1))

| a | b |
|---|---|
| 1 | 2 |
"""


def test_repository_pages(browser, world, tmp_path):
    server, alice = world["server"], world["alice"]
    clone = tmp_path / "content"
    server.git("clone", "-q", _git_url(server, world, alice.username, alice.password),
               str(clone))
    (clone / "README.md").write_text(README)
    (clone / "src").mkdir()
    (clone / "src" / "app.py").write_text("def greet(name):\n    return f'hi {name}'\n")
    server.git("add", ".", cwd=clone)
    server.git("commit", "-qm", "Add the app\n\nWith a README.", cwd=clone)
    server.git("push", "-q", "origin", "HEAD:main", cwd=clone)
    server.git("push", "-q", "origin", "HEAD:refs/heads/feature/x", cwd=clone)
    sha = server.git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    base = f"/{world['workspace']}/{world['slug']}"
    tab = Tab(browser, server)
    tab.sign_in(alice)
    tab.go(base)
    readme = tab.page.locator("section.readme")
    assert readme.locator("h1").inner_text() == "Widget"
    assert readme.locator("table td").count() == 2
    assert readme.locator("script").count() == 0 and readme.locator("[onerror]").count() == 0
    hrefs = readme.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert "https://example.com/docs" in hrefs
    assert not [h for h in hrefs if h and h.startswith("javascript")]
    assert tab.page.title() != "owned"
    assert "feature/x" in tab.page.inner_text("ul.branches")
    assert tab.page.inner_text("#clone-url").endswith(base + ".git")
    tab.shot("repository")
    # A directory, then a highlighted file, on a branch whose name holds a slash.
    with tab.page.expect_navigation():
        tab.page.click("table.tree a:text('src/')")
    assert "app.py" in tab.page.inner_text("table.tree")
    tab.go(base + "/src/feature/x/src/app.py")
    assert tab.page.locator(".highlight .k").first.inner_text() == "def"
    tab.shot("source-file")
    tab.go(base + "/commits")
    assert "Add the app" in tab.page.inner_text("ol.commits")
    tab.shot("commits")
    with tab.page.expect_navigation():
        tab.page.click("ol.commits a:text('Add the app')")
    assert sha in tab.page.inner_text("dl.facts")
    assert tab.page.locator(".diff .add").count() >= 3
    assert "src/app.py" in tab.page.inner_text("ul.changes")
    tab.shot("commit")
    # Granting a user a permission by name, from the repository's settings.
    dana = server.create_user()
    with tab.page.expect_navigation():
        tab.page.click("nav.sub a:text('User permissions')")
    tab.page.fill("#grant-username", dana.username)
    tab.page.select_option("#grant-permission", "write")
    with tab.page.expect_navigation():
        tab.page.click("form.create button[type=submit]")
    assert "Saved" in tab.page.inner_text("p.notice")
    assert "write" in tab.page.inner_text(f"#grant-{dana.username}")
    tab.shot("repository-permissions")
    r = server.api("GET", f"/2.0/repositories{base}", auth=dana)
    assert r.status_code == 200
    tab.go(f"/{world['workspace']}/workspace/projects/{project_key(world['workspace'])}")
    assert world["slug"] in tab.page.inner_text("ul.cards")
    tab.shot("project")
    tab.no_csp_violations()
    tab.close()


def test_repository_webhooks(browser, world, tmp_path):
    server, alice = world["server"], world["alice"]
    base = f"/{world['workspace']}/{world['slug']}"
    tab = Tab(browser, server)
    tab.sign_in(alice)
    tab.go(base)
    with tab.page.expect_navigation():
        tab.page.click("nav.sub a:text('Webhooks')")
    assert "no webhooks yet" in tab.page.inner_text("main")
    # A public address (this machine reaches no network: its attempts fail and are shown).
    tab.page.fill("#hook-description", "Jenkins")
    tab.page.fill("#hook-url", "https://93.184.216.34/bitbucket-hook/")
    tab.page.fill("#hook-secret", "s3cret")
    tab.page.check("input[value='pullrequest:created']")
    tab.submit("form.create")
    assert "Created" in tab.page.inner_text("p.notice")
    assert "signed with" not in tab.page.inner_text("main")  # the hook's own page
    assert "https://93.184.216.34/bitbucket-hook/" in tab.page.inner_text("dl.facts")
    clone = tmp_path / "hooked"
    server.git("clone", "-q", _git_url(server, world, alice.username, alice.password),
               str(clone))
    assert _push(server, clone, "hooked").returncode == 0
    tab.page.reload()
    assert "repo:push" in tab.page.inner_text("table")
    tab.shot("webhook-deliveries")
    tab.go(base + "/settings/webhooks")
    assert "Jenkins" in tab.page.inner_text("table") and "signed with a secret" in tab.page.inner_text("table")
    tab.shot("webhooks")
    tab.page.fill("#hook-url", "http://127.0.0.1:9/")
    tab.submit("form.create")
    assert "loopback, private or link-local" in tab.page.inner_text("main")
    tab.no_csp_violations()
    tab.close()


def test_pull_request_reviewed_and_merged_from_the_pages(browser, world, tmp_path):
    server, alice = world["server"], world["alice"]
    workspace, slug = world["workspace"], world["slug"]
    base = f"/{workspace}/{slug}"
    clone = tmp_path / "pr"
    server.git("clone", "-q", _git_url(server, world, alice.username, alice.password),
               str(clone))
    server.git("checkout", "-qb", "feature/greeting", cwd=clone)
    (clone / "greeting.txt").write_text("hello\nworld\n")
    server.git("add", ".", cwd=clone)
    server.git("commit", "-qm", "Add a greeting", cwd=clone)
    server.git("push", "-q", "origin", "feature/greeting", cwd=clone)
    erin = server.create_user()
    r = server.api("PUT", f"/2.0/repositories{base}/permissions-config/users/{erin.username}",
                   auth=alice, json={"permission": "write"})
    assert r.status_code in (200, 201), r.text
    r = server.api("POST", f"/2.0/repositories{base}/pullrequests", auth=alice, json={
        "title": "Add a greeting", "description": "Says hello.",
        "source": {"branch": {"name": "feature/greeting"}},
        "reviewers": [{"username": erin.username}],
    })
    assert r.status_code == 201, r.text
    number = r.json()["id"]
    # erin reviews and comments
    reviewer = Tab(browser, server)
    reviewer.sign_in(erin)
    reviewer.go(base)
    with reviewer.page.expect_navigation():
        reviewer.page.click("nav.sub a:text('Pull requests')")
    assert f"#{number} Add a greeting" in reviewer.page.inner_text("ul.pulls")
    reviewer.shot("pull-requests")
    with reviewer.page.expect_navigation():
        reviewer.page.click(f"#pr-{number} a")
    assert reviewer.page.locator(".diff .add").count() >= 2
    with reviewer.page.expect_navigation():
        reviewer.page.click("button:text('Approve')")
    reviewer.page.fill("#comment-text", "Nice and small.")
    with reviewer.page.expect_navigation():
        reviewer.page.click("form:has(#comment-text) button[type=submit]")
    assert f"{erin.username}: approved" in reviewer.page.inner_text("dl.facts")
    assert "Nice and small." in reviewer.page.inner_text("ul.comments")
    reviewer.no_csp_violations()
    reviewer.close()
    # alice merges with a squash
    tab = Tab(browser, server)
    tab.sign_in(alice)
    tab.go(f"{base}/pull-requests/{number}")
    tab.shot("pull-request")
    tab.page.select_option("#merge-strategy", "squash")
    tab.page.check("#merge-close")
    with tab.page.expect_navigation():
        tab.page.click("form.merge button[type=submit]")
    assert "Merged." in tab.page.inner_text("p.notice")
    assert "merged" in tab.page.inner_text("h2")
    tab.shot("pull-request-merged")
    heads = server.git("ls-remote", server.clone_url(workspace, slug, alice), cwd=clone).stdout
    assert "refs/heads/feature/greeting" not in heads  # the source branch was deleted
    tab.no_csp_violations()
    tab.close()


def test_pages_at_360px_by_keyboard_with_no_critical_accessibility_violations(browser, world):
    server, alice = world["server"], world["alice"]
    tab = Tab(browser, server, width=360)
    # Signed in by keyboard alone.
    tab.go("/login")
    tab.page.focus("#username")
    tab.page.keyboard.type(alice.username)
    tab.page.keyboard.press("Tab")
    tab.page.keyboard.type(alice.password)
    with tab.page.expect_navigation():
        tab.page.keyboard.press("Enter")
    assert "Sign out" in tab.page.inner_text("header")
    pages = {
        "dashboard": "/",
        "workspace": f"/{world['workspace']}",
        "repository": f"/{world['workspace']}/{world['slug']}",
        "commits": f"/{world['workspace']}/{world['slug']}/commits",
        "personal-access-tokens": "/account/personal-access-tokens",
        "app-passwords": "/account/app-passwords",
        "api-tokens": "/account/api-tokens",
        "two-step": "/account/two-step",
        "sessions": "/account/sessions",
        "oauth-authorizations": "/account/oauth-authorizations",
        "members": f"/{world['workspace']}/settings/members",
        "repository-tokens": f"/{world['workspace']}/{world['slug']}/settings/access-tokens",
        "repository-permissions":
            f"/{world['workspace']}/{world['slug']}/settings/permissions",
        "project": f"/{world['workspace']}/workspace/projects/{project_key(world['workspace'])}",
        "user": f"/users/{alice.username}",
        "notifications": "/account/notifications",
        "webhooks-list": f"/{world['workspace']}/{world['slug']}/settings/webhooks",
        "pull-requests-list": f"/{world['workspace']}/{world['slug']}/pull-requests",
    }
    violations: dict[str, Any] = {}
    for name, path in pages.items():
        answer = tab.go(path)
        assert answer.status == 200, (path, answer.status)
        width = tab.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 360, (path, width)
        tab.shot(f"{name}-360")
        if AXE.is_file():
            found = _axe(tab)
            if found:
                violations[path] = found
    tab.no_csp_violations()
    anonymous = Tab(browser, server)
    anonymous.go("/")
    assert "public-site" in anonymous.page.inner_text("main")
    anonymous.shot("dashboard-anonymous")
    anonymous.go("/login")
    anonymous.shot("sign-in")
    if AXE.is_file():
        for path in ("/", "/login"):
            anonymous.go(path)
            found = _axe(anonymous)
            if found:
                violations[path] = found
    anonymous.close()
    tab.close()
    assert not violations, violations
    if not AXE.is_file():
        pytest.skip(f"axe-core is not installed ({AXE}): npm install --prefix .cache/npm "
                    "axe-core")
