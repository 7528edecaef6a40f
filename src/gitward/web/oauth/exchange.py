"""RFC 8693 token exchange at /site/oauth2/access_token: a CI job's OIDC ID token for a
short-lived access token of the resource whose trust accepts it (docs/oidc-federation.md).

Three steps, so that no unit of work (and, on SQLite, no write lock) is held while the
issuer's keys are fetched over the network:

1. a read-only unit of work asks whether any trust names the token's issuer (only then are
   its keys fetched: a made-up issuer costs the server no request);
2. outside any unit of work, the issuer's keys (cached) verify the signature and the
   registered claims;
3. a unit of work matches the trusts, spends the `jti` and mints the token.

Every answer is audited, a refusal with its reason in a transaction of its own; the ID token
itself never is.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import Request
from sqlalchemy.exc import IntegrityError
from starlette.responses import JSONResponse, Response

from gitward.credentials.oidc import TokenRefused, VerifiedToken, read_unverified
from gitward.runtime import Runtime
from gitward.services import oidc_trusts
from gitward.services.caller import Caller
from gitward.web.pipeline import Ingress, pipeline_of

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _refusal(refused: TokenRefused) -> JSONResponse:
    return JSONResponse({"error": refused.error, "error_description": refused.reason}, 400,
                        NO_STORE)


def _audit_refusal(runtime: Runtime, refused: TokenRefused, client_ip: str | None) -> None:
    try:
        with runtime.unit_of_work() as store:
            oidc_trusts.record_refusal(store, refused, client_ip)
    except Exception:
        log.exception("could not record a refused token exchange")


async def token_exchange(request: Request, form: dict[str, str]) -> Response:
    runtime: Runtime = request.app.state.runtime
    pipeline = pipeline_of(request)
    client_ip = request.client.host if request.client else None
    try:
        token_type = form.get("subject_token_type")
        if token_type != oidc_trusts.JWT_TOKEN_TYPE:
            raise TokenRefused(f"subject_token_type must be {oidc_trusts.JWT_TOKEN_TYPE} "
                               "(an OIDC ID token)", error="invalid_request")
        subject_token = form.get("subject_token", "").strip()
        if not subject_token:
            raise TokenRefused("subject_token is required", error="invalid_request")
        presented = read_unverified(subject_token)

        def trusted(caller: Caller) -> bool:
            return oidc_trusts.issuer_trusted(caller.store, presented.issuer)

        if not await pipeline.call(Ingress(client_ip=client_ip, write=False), trusted):
            raise TokenRefused("No trust accepts ID tokens of this issuer",
                               issuer=presented.issuer, subject=presented.subject,
                               jti=presented.jti)
        verified: VerifiedToken = await asyncio.to_thread(runtime.oidc_keys.verify, presented)

        def mint(caller: Caller) -> oidc_trusts.Exchanged:
            return oidc_trusts.exchange(
                caller.store, runtime.resource_tokens, verified,
                scope=form.get("scope"), resource=form.get("resource"), client_ip=client_ip,
            )

        try:
            exchanged = await pipeline.call(Ingress(client_ip=client_ip, write=True), mint)
        except IntegrityError:
            # Two exchanges of the same jti racing (two workers or hosts): one commits.
            raise TokenRefused("This ID token (its jti) was already exchanged",
                               issuer=verified.issuer, subject=verified.subject,
                               jti=verified.jti) from None
    except TokenRefused as error:
        refused = error
        await pipeline.offload(lambda: _audit_refusal(runtime, refused, client_ip))
        return _refusal(refused)
    return JSONResponse(exchanged.body, 200, NO_STORE)
