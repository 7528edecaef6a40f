"""Pull requests in the web interface: the list by state, one with its diff, reviews,
comments, merge and decline, through the same service as the API (so the same rules, audit
and events); readers see but cannot act; others get the 404 page."""

from __future__ import annotations

from gitward.web.app import create_app
from tests.asgi_client import AppClient
from tests.integration import pull_request_helpers as helpers
from tests.integration.pull_request_helpers import CLOUD, git
from tests.integration.web_helpers import post, sign_in

setup = helpers.setup

PAGES = "/acme/widget/pull-requests"


def browser(runtime) -> AppClient:
    return AppClient(create_app(runtime), raise_server_exceptions=False)


def open_pr(client, author, source="feature", title="Add b") -> int:
    r = client.post(CLOUD, headers=author.auth, json={
        "title": title, "description": "Adds **b**.", "source": {"branch": {"name": source}},
        "destination": {"branch": {"name": "main"}},
    })
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_list_page_review_comment_and_merge(client, runtime, world, setup):
    alice, bob, _, heads = setup
    number = open_pr(client, alice)
    sign_in(client, alice)
    listing = client.get(PAGES)
    assert listing.status_code == 200
    assert f"#{number} Add b" in listing.text and "feature</code> → <code>main" in listing.text
    assert "No merged pull requests" in client.get(PAGES + "?state=merged").text
    page = client.get(f"{PAGES}/{number}")
    assert page.status_code == 200
    assert 'class="add">+b' in page.text and "b.txt" in page.text  # the diff
    assert "Adds **b**." in page.text  # the description, as text
    assert ">Approve<" not in page.text  # the author does not review their own
    # bob (write) approves and comments from the page
    bob_tab = browser(runtime)
    sign_in(bob_tab, bob)
    path = f"{PAGES}/{number}"
    assert post(bob_tab, f"{path}/review", {"status": "approve"}, page=path).status_code == 303
    assert post(bob_tab, f"{path}/comments", {"text": "Looks <b>good</b>"},
                page=path).status_code == 303
    api = client.get(f"{CLOUD}/{number}", headers=alice.auth).json()
    assert [p["approved"] for p in api["participants"] if p["user"]["nickname"] == "bob"] == [True]
    shown = bob_tab.get(path).text
    assert "bob: approved" in shown and "Looks &lt;b&gt;good&lt;/b&gt;" in shown
    assert ">Unapprove<" in shown
    # alice merges with a merge commit: main moves to a commit with both parents
    r = post(client, f"{path}/merge", {"strategy": "merge_commit"}, page=path)
    assert r.status_code == 303, r.text
    main = git(world, "widget", "rev-parse", "refs/heads/main")
    parents = git(world, "widget", "log", "-1", "--format=%P", main).split()
    assert parents == [heads["main"], heads["feature"]]
    merged = client.get(path).text
    assert "Merged." in client.get(path + "?notice=merged").text
    assert "state-merged" in merged and main[:12] in merged and ">Merge<" not in merged
    assert client.get(f"{CLOUD}/{number}", headers=alice.auth).json()["state"] == "MERGED"


def test_decline_and_errors_are_shown_on_the_page(client, runtime, setup):
    alice, _, _, _ = setup
    first = open_pr(client, alice)  # feature changes a.txt as clash does otherwise
    r = client.post(f"{CLOUD}/{first}/merge", headers=alice.auth, json={})
    assert r.status_code == 200, r.text
    number = open_pr(client, alice, source="clash", title="Clash")
    other = open_pr(client, alice, source="other", title="Other")
    sign_in(client, alice)
    path = f"{PAGES}/{number}"
    page = client.get(path).text
    assert "has conflicts with" in page  # the merge check, before merging
    r = post(client, f"{path}/merge", {"strategy": "merge_commit"}, page=path)
    assert r.status_code == 409 and "a.txt" in r.text  # the conflicting file named
    r = post(client, f"{path}/merge", {"strategy": "octopus"}, page=path)
    assert r.status_code == 400 and "Unknown merge strategy" in r.text
    r = post(client, f"{path}/comments", {"text": "   "}, page=path)
    assert r.status_code == 400 and "needs text" in r.text
    assert post(client, f"{PAGES}/{other}/decline", page=f"{PAGES}/{other}").status_code == 303
    assert client.get(f"{CLOUD}/{other}", headers=alice.auth).json()["state"] == "DECLINED"
    assert f"#{other} Other" in client.get(PAGES + "?state=declined").text
    assert f"#{other} Other" not in client.get(PAGES).text


def test_readers_see_without_acting_and_others_get_404(client, runtime, world, setup):
    alice, _, carol, _ = setup
    number = open_pr(client, alice)
    tab = browser(runtime)
    sign_in(tab, carol)  # read access only
    page = tab.get(f"{PAGES}/{number}")
    assert page.status_code == 200 and ">Merge<" not in page.text and "Add a comment" not in page.text
    path = f"{PAGES}/{number}"
    assert post(tab, f"{path}/decline", page=path).status_code == 403
    assert client.get(f"{CLOUD}/{number}", headers=alice.auth).json()["state"] == "OPEN"
    dave = world.user("dave")
    stranger = browser(runtime)
    sign_in(stranger, dave)
    assert stranger.get(PAGES).status_code == 404
    assert stranger.get(f"{PAGES}/{number}").status_code == 404
    assert tab.get(f"{PAGES}/999").status_code == 404
    assert tab.get(f"{PAGES}/abc").status_code == 404
