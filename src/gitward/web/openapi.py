"""The error answers each operation of /openapi.json documents: the ones the server gives.

FastAPI describes a 422 for every operation with parameters, which Gitward never answers (a
request it cannot read is a 400 in the surface's shape: web/errors.py), and nothing of the
errors it does answer. This module replaces the one with the others, by rule, per surface:

| status | documented on |
|---|---|
| 400 | every operation (bad input, bad paging, an unknown Host; Cloud duplicates) |
| 401 | every operation that reads a credential (none, or a bad one) |
| 403 | the same (the credential lacks a permission or a scope) |
| 404 | operations with path parameters and a credential (what the caller may not see), and
        those that name a resource in their query or body (`NAMES_A_RESOURCE`) |
| 409 | Bitbucket Server writes (duplicates, stale versions) |
| 413 | operations with a request body (`GITWARD_MAX_BODY_BYTES`) |
| 429 | every operation that reads a credential (password guessing protection), and those
        rate limited themselves |

An operation that reads no credential says so with `openapi_extra={ANONYMOUS: True}`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from gitward.web.errors import Surface

#: Marks an operation that reads no credential (the revocation API).
ANONYMOUS = "x-gitward-anonymous"
#: Marks an operation with a rate limit of its own.
RATE_LIMITED = "x-gitward-rate-limited"
#: Marks an operation without path parameters that names a resource in its query or body
#: (Bitbucket Server's admin API names the user so): it answers 404 when there is none.
NAMES_A_RESOURCE = "x-gitward-names-a-resource"

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_WRITES = ("put", "post", "delete", "patch")
_WITH_BODY = ("put", "post", "patch")

_DESCRIPTIONS = {
    400: "Bad input: the message names the field or parameter",
    401: "No credential, or one that is not valid (with `WWW-Authenticate`)",
    403: "The credential is valid but lacks a permission or scope: the message names it",
    404: "Not found, or not visible to the caller",
    409: "Conflicts with what exists (a duplicate, a stale version)",
    413: "The request body is larger than the server accepts",
    429: "Too many attempts: `Retry-After` says when to try again",
}

SCHEMAS: dict[Surface, tuple[str, dict[str, Any]]] = {
    Surface.CLOUD: (
        "CloudError",
        {
            "type": "object",
            "required": ["type", "error"],
            "properties": {
                "type": {"type": "string", "enum": ["error"]},
                "error": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"type": "string"}, "detail": {"type": "string"}},
                },
            },
        },
    ),
    Surface.SERVER: (
        "ServerError",
        {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "context": {"type": "string", "nullable": True},
                            "message": {"type": "string"},
                            "exceptionName": {"type": "string"},
                        },
                    },
                }
            },
        },
    ),
    Surface.OAUTH: (
        "OAuthError",
        {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "error_description": {"type": "string"},
            },
        },
    ),
}


def error_statuses(
    surface: Surface, method: str, path: str, operation: dict[str, Any]
) -> list[int]:
    """The error statuses `operation` answers, by the module's rule."""
    anonymous = bool(operation.get(ANONYMOUS))
    statuses = {400}
    if not anonymous:
        statuses |= {401, 403, 429}
        if "{" in path or operation.get(NAMES_A_RESOURCE):
            statuses.add(404)
    if operation.get(RATE_LIMITED):
        statuses.add(429)
    if surface is Surface.SERVER and method in _WRITES and not anonymous:
        statuses.add(409)
    if method in _WITH_BODY:
        statuses.add(413)
    return sorted(statuses)


def document_errors(schema: dict[str, Any], surface: Surface) -> None:
    """Rewrite one surface's description in place (see the module)."""
    named = SCHEMAS.get(surface)
    if named is None:
        return
    name, body = named
    reference = {"$ref": f"#/components/schemas/{name}"}
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in error_statuses(surface, method, path, operation):
                responses[str(status)] = {
                    "description": _DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": reference}},
                }
            operation.pop(ANONYMOUS, None)
            operation.pop(RATE_LIMITED, None)
            operation.pop(NAMES_A_RESOURCE, None)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas[name] = body


def media(*media_types: str, description: str = "Successful Response") -> dict[str, Any]:
    """The route arguments of an operation whose 200 is not (only) JSON: each of
    `media_types`, as a string. With them the route's own response class adds no JSON of its
    own to the description (`response_class=Response`), so /openapi.json names exactly the
    types the operation answers."""
    return {
        "response_class": Response,
        "responses": {
            200: {
                "description": description,
                "content": {kind: {"schema": {"type": "string"}} for kind in media_types},
            }
        },
    }
