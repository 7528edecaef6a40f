"""FastAPI dependencies: the runtime and paging (no I/O: they run on the event loop).

The caller and its unit of work come from the pipeline (web/pipeline.py: `CallerDep`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from gitward.runtime import Runtime
from gitward.services import audit
from gitward.services.audit import AuditFilter
from gitward.services.errors import BadRequest
from gitward.web.pipeline import CallerDep


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


#: Far beyond any listing; keeps absurd numbers (and offsets computed from them) out.
MAX_PAGE = 1_000_000
#: The same for Server's `start` (an offset): beyond it, the database's OFFSET overflows.
MAX_START = 1_000_000_000


class CloudPage:
    def __init__(self, page: int, pagelen: int) -> None:
        self.page = page
        self.pagelen = pagelen


async def cloud_page(
    page: Annotated[str | None, Query()] = None,
    pagelen: Annotated[str | None, Query()] = None,
) -> CloudPage:
    return CloudPage(
        _positive(page, "page", 1, MAX_PAGE), _positive(pagelen, "pagelen", 10, 100)
    )


class ServerPage:
    def __init__(self, start: int, limit: int) -> None:
        self.start = start
        self.limit = limit


async def server_page(
    start: Annotated[str | None, Query()] = None,
    limit: Annotated[str | None, Query()] = None,
) -> ServerPage:
    return ServerPage(_non_negative(start, "start"), _positive(limit, "limit", 25, 1000))


def _positive(raw: str | None, name: str, default: int, maximum: int | None) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a positive integer, not {raw[:40]!r}") from None
    if value < 1:
        raise BadRequest(f"{name} must be a positive integer, not {value}")
    if maximum is not None and value > maximum:
        raise BadRequest(f"{name} must be at most {maximum}")
    return value


def _non_negative(raw: str | None, name: str) -> int:
    if raw is None or raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a non-negative integer, not {raw[:40]!r}") from None
    if value < 0:
        raise BadRequest(f"{name} must be a non-negative integer, not {value}")
    if value > MAX_START:
        raise BadRequest(f"{name} must be at most {MAX_START}")
    return value


CloudPageDep = Annotated[CloudPage, Depends(cloud_page)]
ServerPageDep = Annotated[ServerPage, Depends(server_page)]


__all__ = ["CallerDep", "CloudPageDep", "RuntimeDep", "ServerPageDep"]


_Filter = Annotated[str | None, Query()]


def audit_filter(
    actor: _Filter = None,
    action: _Filter = None,
    target: _Filter = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: _Filter = None,
) -> AuditFilter:
    """The filters of an audit listing, the same on both APIs: `actor`, `action`, `target`,
    `from`/`to` (ISO 8601 or epoch milliseconds); 400 naming the one that does not parse."""
    return audit.audit_filter(actor, action, target, from_, to)


AuditFilterDep = Annotated[AuditFilter, Depends(audit_filter)]
