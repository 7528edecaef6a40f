"""Following the links of Cloud answers (see LinkCheckingClient in conftest.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from starlette.routing import Match

BASE = "http://testserver"


def links_of(body: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(where, href) of every link anywhere in a JSON answer: the values of `links` objects,
    `{"href": ...}` or lists of `{"name", "href"}`."""
    if isinstance(body, list):
        for i, item in enumerate(body):
            yield from links_of(item, f"{path}[{i}]")
        return
    if not isinstance(body, dict):
        return
    for key, value in body.items():
        if key == "links" and isinstance(value, dict):
            for name, link in value.items():
                for one in link if isinstance(link, list) else [link]:
                    if isinstance(one, dict) and isinstance(one.get("href"), str):
                        yield f"{path}.links.{name}", one["href"]
        else:
            yield from links_of(value, f"{path}.{key}" if path else key)


#: How many links to one route (by its path template, with one kind of credential) are
#: followed in a test session (per xdist worker). Every test's answers still hand out
#: links, but the thousandth `links.commits` of a repository tells nothing the first ones
#: did not; following every link of every answer was a fifth of the suite's time.
TIMES_PER_ROUTE = 3
_FOLLOWED_PER_ROUTE: Counter[tuple[str, str]] = Counter()


def route_of(app: Any, path: str) -> str:
    """The path template of the route a GET of `path` reaches, or `path` itself."""
    found = app.surface_of(path) if hasattr(app, "surface_of") else None
    if found is None:
        return path
    prefix, surface = found
    scope = {"type": "http", "method": "GET", "path": path[len(prefix):], "root_path": ""}
    for route in surface.router.routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return prefix + route.path
    return path


def _credential_kind(auth: str | None) -> str:
    return "anonymous" if auth is None else auth.split(" ", 1)[0].lower()


def broken_links(
    client: Any,
    body: Any,
    auth: str | None,
    followed: set[tuple[str, str | None]],
    exempt: Mapping[str, str],
    admin_auth: Callable[[], str],
) -> list[tuple[str, str, int]]:
    """GET each link of `body` not followed yet: those that answer 404, 405 or 5xx. A link
    to what the caller may not see (a public repository's workspace, for an outsider) is
    404 for it; such a link must answer a site administrator, who sees everything."""
    broken = []
    for where, href in links_of(body):
        name = where.rsplit(".", 1)[-1]
        if name in exempt:
            continue
        assert href.startswith(BASE + "/"), (where, href)
        if (href, auth) in followed:
            continue
        followed.add((href, auth))
        route = (route_of(client.app, href[len(BASE):].split("?", 1)[0]), _credential_kind(auth))
        if _FOLLOWED_PER_ROUTE[route] >= TIMES_PER_ROUTE:
            continue
        _FOLLOWED_PER_ROUTE[route] += 1
        headers = {"Authorization": auth} if auth else {}
        r = client.get(href[len(BASE):], headers=headers)
        if r.status_code in (401, 404):
            r = client.get(href[len(BASE):], headers={"Authorization": admin_auth()})
        if r.status_code in (404, 405) or r.status_code >= 500:
            broken.append((where, href, r.status_code))
    return broken
