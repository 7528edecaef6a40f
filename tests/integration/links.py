"""Following the links of Cloud answers (see LinkCheckingClient in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

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
        headers = {"Authorization": auth} if auth else {}
        r = client.get(href[len(BASE):], headers=headers)
        if r.status_code in (401, 404):
            r = client.get(href[len(BASE):], headers={"Authorization": admin_auth()})
        if r.status_code in (404, 405) or r.status_code >= 500:
            broken.append((where, href, r.status_code))
    return broken
