"""The revocation API: `POST /rest/revocation/1.0/tokens` `{"tokens": [...]}`, without a
credential (docs/revocation.md).

Counted per client address first (on the guessing protection's counters, before any unit of
work opens), then run through the pipeline as an anonymous request whatever the request
carries: a leaked secret is revoked by its holder, never used.
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from gitward.credentials import codec
from gitward.runtime import Runtime
from gitward.services import revocation
from gitward.services.errors import TooManyRequests
from gitward.web.openapi import ANONYMOUS, RATE_LIMITED
from gitward.web.pipeline import Ingress, UnitRoute, pipeline_of

router = APIRouter(route_class=UnitRoute, prefix="/revocation/1.0", tags=["revocation"])


class RevokeBody(BaseModel):
    """Checked by the service, so that each problem gets its own message."""

    model_config = ConfigDict(extra="ignore")
    tokens: Any = None


@router.post("/tokens", openapi_extra={ANONYMOUS: True, RATE_LIMITED: True})
async def revoke_tokens(request: Request, body: RevokeBody) -> JSONResponse:
    """Revoke Gitward secrets you hold, of any kind that can be revoked. Needs no
    credential; the answer is the same whether or not any of them was live."""
    runtime: Runtime = request.app.state.runtime
    pipeline = pipeline_of(request)
    client_ip = request.client.host if request.client else None
    blocked = await pipeline.offload(lambda: runtime.revocation_limit.take(client_ip))
    if blocked is not None:
        raise TooManyRequests(
            "Too many revocation requests from your address. "
            f"Try again in {blocked.retry_after} seconds.",
            blocked.retry_after,
        )
    secrets = revocation.secrets_of(body.tokens, runtime.settings.revocation_max_tokens)
    hash_of = functools.partial(codec.keyed_hash, runtime.secret_key)
    # Anonymous: no Authorization of the request is read, so none can fail it either.
    ingress = Ingress(client_ip=client_ip, write=True)
    report = await pipeline.call(
        ingress,
        lambda caller: revocation.revoke_leaked(caller, runtime.credentials, hash_of, secrets),
    )
    return JSONResponse(
        {
            "received": report.received,
            "message": "Every live Gitward secret among these is revoked.",
        }
    )
