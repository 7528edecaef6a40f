"""Bitbucket Cloud's partial responses: the `fields` parameter, on every `/2.0` JSON answer.

    fields=values.name,values.links.self     only these (and the objects that hold them)
    fields=-values.links                     everything but these
    fields=+values.reviewers                 add fields left out by default
    fields=-values.*.links                   `*` stands for any one field name

A term without a sign selects: once there is one, the answer holds only what the selecting
terms (and `+` terms) name. `-` terms are removed afterwards. Lists are looked through: a
path goes on into every element. Gitward leaves no field out by default, so `+` only
matters beside selecting terms. In a query string an unencoded `+` reads as a space; a term
that starts with a space is therefore taken as a `+` term, which is what was meant.

It is applied in one place, `PartialResponse`, the innermost middleware of the Cloud
surface: each endpoint answers in full, and a successful JSON answer is cut down on its way
out. A malformed `fields` is a 400 before the endpoint runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gitward.web.errors import Surface, error_response

_SEGMENT = re.compile(r"[A-Za-z0-9_\-]+|\*")
MAX_TERMS = 100
MAX_LENGTH = 2000


class FieldsError(ValueError):
    pass


@dataclass(frozen=True)
class Partial:
    """A parsed `fields`: paths to keep (None: everything) and paths to remove."""

    keep: tuple[tuple[str, ...], ...] | None
    remove: tuple[tuple[str, ...], ...]


def parse(raw: str) -> Partial | None:
    """The partial response `raw` asks for; None when it asks for the whole answer."""
    if len(raw) > MAX_LENGTH:
        raise FieldsError(f"fields is longer than {MAX_LENGTH} characters")
    terms = [term for term in raw.split(",") if term.strip()]
    if len(terms) > MAX_TERMS:
        raise FieldsError(f"fields names more than {MAX_TERMS} fields")
    select: list[tuple[str, ...]] = []
    add: list[tuple[str, ...]] = []
    remove: list[tuple[str, ...]] = []
    for term in terms:
        sign = "+" if term[:1].isspace() else ""
        text = term.strip()
        if text[:1] in "+-":
            sign, text = text[0], text[1:].strip()
        path = tuple(text.split("."))
        for segment in path:
            if not _SEGMENT.fullmatch(segment):
                raise FieldsError(f"Invalid field path {text[:100]!r} in fields")
        {"": select, "+": add, "-": remove}[sign].append(path)
    if not select and not remove:
        return None
    return Partial(tuple(select + add) if select else None, tuple(remove))


def _trie(paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    """Nested dicts of path segments; an empty dict marks a path's end (keep all below)."""
    root: dict[str, Any] = {}
    for path in sorted(paths, key=len):  # shorter first: they keep all below them
        node = root
        for segment in path[:-1]:
            if node.get(segment) == {} and segment in node:
                break
            node = node.setdefault(segment, {})
        else:
            node[path[-1]] = {}
    return root


def _keep(value: Any, trie: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [kept for item in value if (kept := _keep(item, trie)) is not _DROP]
    if not isinstance(value, dict):
        return _DROP
    out: dict[str, Any] = {}
    for key, inner in value.items():
        subtries = [t for t in (trie.get(key), trie.get("*")) if t is not None]
        if not subtries:
            continue
        if any(t == {} for t in subtries):
            out[key] = inner
            continue
        merged: dict[str, Any] = {}
        for t in subtries:
            merged.update(t)
        kept = _keep(inner, merged)
        if kept is not _DROP:
            out[key] = kept
    # An object none of whose fields were asked for is left out, as a field of no object.
    return out if out else _DROP


_DROP = object()


def _remove(value: Any, path: tuple[str, ...]) -> None:
    if isinstance(value, list):
        for item in value:
            _remove(item, path)
        return
    if not isinstance(value, dict):
        return
    head, rest = path[0], path[1:]
    keys = list(value) if head == "*" else [head] if head in value else []
    for key in keys:
        if rest:
            _remove(value[key], rest)
        else:
            del value[key]


def apply(body: Any, partial: Partial) -> Any:
    """`body` cut down to what `partial` asks for."""
    if partial.keep is not None:
        body = _keep(body, _trie(partial.keep))
        if body is _DROP:
            body = {}
    for path in partial.remove:
        _remove(body, path)
    return body


def _fields_of(query_string: bytes) -> str | None:
    values = [
        value for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        if key == "fields"
    ]
    return ",".join(values) if values else None


class PartialResponse:
    """Applies `fields` to the successful JSON answers of the surface it wraps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query: bytes = scope.get("query_string", b"") if scope["type"] == "http" else b""
        raw = _fields_of(query) if b"fields" in query else None
        if raw is None:
            await self.app(scope, receive, send)
            return
        try:
            partial = parse(raw)
        except FieldsError as error:
            await error_response(Surface.CLOUD, 400, str(error))(scope, receive, send)
            return
        if partial is None:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []
        passing = False

        async def capture(message: Message) -> None:
            nonlocal start, passing
            if message["type"] == "http.response.start":
                sent = dict(message.get("headers", []))
                json = sent.get(b"content-type", b"").startswith(b"application/json")
                if 200 <= message["status"] < 300 and json:
                    start = message
                    return
                passing = True
            if passing or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            if body:
                body = orjson.dumps(apply(orjson.loads(body), partial))
            assert start is not None
            headers = [
                (name, value) for name, value in start.get("headers", [])
                if name.lower() != b"content-length"
            ]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)
