"""The link walker (LinkCheckingClient, links.py) itself: it finds a link that does not
answer, and follows a route's links only a few times per session."""

from tests.integration import links

BASE = links.BASE


def test_a_link_that_does_not_answer_is_reported(client, world):
    ann = world.user("ann")
    body = {"links": {"self": {"href": f"{BASE}/2.0/user"},
                      "gone": {"href": f"{BASE}/2.0/no-such-route-of-the-walker-test"}}}
    broken = links.broken_links(client, body, ann.auth["Authorization"], set(), {},
                                client.admin_auth)
    assert broken == [(".links.gone", f"{BASE}/2.0/no-such-route-of-the-walker-test", 404)]


def test_links_to_one_route_are_followed_a_few_times(client, world, monkeypatch):
    ann = world.user("ann")
    world.workspace(ann, "ws")
    monkeypatch.setattr(links, "_FOLLOWED_PER_ROUTE", links.Counter())
    asked: list[str] = []
    real_get = client.get

    def counting_get(url, **kwargs):
        asked.append(url)
        return real_get(url, **kwargs)

    monkeypatch.setattr(client, "get", counting_get)
    for n in range(links.TIMES_PER_ROUTE + 2):
        body = {"links": {"self": {"href": f"{BASE}/2.0/workspaces/ws?n={n}"}}}
        assert links.broken_links(client, body, ann.auth["Authorization"], set(), {},
                                  client.admin_auth) == []
    assert len(asked) == links.TIMES_PER_ROUTE
    assert links.route_of(client.app, "/2.0/workspaces/ws") == "/2.0/workspaces/{workspace}"
