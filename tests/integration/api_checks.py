"""Assertions on the error and page JSON shapes of each API family, shared by the REST tests."""

from __future__ import annotations

from typing import Any

import httpx

BASE = "http://testserver"


def cloud_error(r: httpx.Response, status: int, contains: str | None = None) -> dict[str, Any]:
    """A Bitbucket Cloud error: {"type": "error", "error": {"message": ...}}."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["type"] == "error", body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert set(body["error"]) <= {"message", "detail", "fields"}, body
    if contains is not None:
        text = body["error"]["message"] + " " + str(body["error"].get("detail", ""))
        assert contains.lower() in text.lower(), body
    if status == 401:
        assert r.headers["www-authenticate"] == 'Basic realm="Gitward"'
    return body


def server_error(r: httpx.Response, status: int, contains: str | None = None) -> dict[str, Any]:
    """A Bitbucket Server error: {"errors": [{"context", "message", "exceptionName"}]}."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert list(body) == ["errors"], body
    assert len(body["errors"]) >= 1
    for error in body["errors"]:
        assert set(error) == {"context", "message", "exceptionName"}, error
        assert error["context"] is None
        assert error["message"]
        assert error["exceptionName"].startswith("com.atlassian.bitbucket."), error
    if contains is not None:
        assert contains.lower() in body["errors"][0]["message"].lower(), body
    if status == 401:
        assert r.headers["www-authenticate"] == 'Basic realm="Gitward"'
    return body


def cloud_object(body: dict[str, Any], kind: str) -> dict[str, Any]:
    assert body["type"] == kind, body
    href = body["links"]["self"]["href"]
    assert href.startswith(BASE + "/"), href
    return body


def cloud_page(
    body: dict[str, Any], *, size: int, pagelen: int = 10, page: int = 1
) -> list[dict[str, Any]]:
    """A Cloud page: pagelen, size, page, values, next when there is more."""
    assert body["pagelen"] == pagelen, body
    assert body["size"] == size, body
    assert body["page"] == page, body
    values = body["values"]
    assert isinstance(values, list)
    assert len(values) == max(0, min(pagelen, size - (page - 1) * pagelen))
    if page * pagelen < size:
        assert body["next"].startswith(BASE + "/"), body
    else:
        assert "next" not in body, body
    return values
