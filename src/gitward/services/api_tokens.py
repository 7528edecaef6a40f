"""Use cases of API tokens (`gwapi_`): a user creates, lists and revokes their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gitward.credentials.api_token import ApiTokens
from gitward.domain import networks
from gitward.domain.permissions import Action, parse_api_scopes
from gitward.services import validation
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, NotFound
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import ApiToken, utcnow

MAX_NAME_LENGTH = 255
#: An API token lives at most this long (as on Bitbucket Cloud).
MAX_LIFETIME = timedelta(days=365)
#: At most this many API tokens per user.
MAX_PER_USER = 100


@dataclass(frozen=True)
class Created:
    token: ApiToken
    secret: str


def _expires_on(value: object, now: datetime) -> datetime:
    example = (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if value is None:
        raise BadRequest(
            f"An API token must expire: give expires_on, an ISO 8601 date and time at most "
            f"365 days ahead, e.g. {example}"
        )
    if not isinstance(value, str):
        raise BadRequest(f"expires_on must be an ISO 8601 date and time, e.g. {example}")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadRequest(
            f"expires_on must be an ISO 8601 date and time, not {value[:40]!r}"
        ) from None
    if moment <= now:
        raise BadRequest("expires_on must be in the future.")
    if moment > now + MAX_LIFETIME:
        raise BadRequest("expires_on must be at most 365 days ahead.")
    return moment


def create_token(
    caller: Caller,
    tokens: ApiTokens,
    *,
    name: object,
    scopes: object,
    expires_on: object,
    allowed_ips: object = None,
) -> Created:
    """A new API token of the caller's own, signed in with an interactive credential."""
    user = caller.require_own_account(Action.CREDENTIAL_CREATE)
    clean_name = validation.required_text(name, "token name", MAX_NAME_LENGTH)
    try:
        granted = parse_api_scopes(scopes)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    now = utcnow()
    expiry = _expires_on(expires_on, now)
    allowed = validation.allowed_ips(allowed_ips)
    if caller.store.credentials.api_token_count(user.id) >= MAX_PER_USER:
        raise BadRequest(f"A user may hold at most {MAX_PER_USER} API tokens: revoke one first.")
    secret, token_hash = tokens.new_secret()
    row = ApiToken(
        user_id=user.id,
        name=clean_name,
        token_hash=token_hash,
        scopes=" ".join(sorted(s.value for s in granted)),
        created_on=now,
        expires_on=expiry,
        allowed_ips=networks.stored(allowed),
    )
    caller.store.add(row)
    caller.store.flush()
    caller.audit(
        "api-token.create",
        target=f"user:{user.username}",
        token_id=row.id,
        name=row.name,
        scopes=row.scopes.split(),
        expires_on=expiry.isoformat(),
        allowed_ips=list(allowed or ()),
    )
    return Created(row, secret)


def list_tokens(caller: Caller, window: Window = EVERYTHING) -> Page[ApiToken]:
    """One window of the caller's own API tokens, newest first (never a secret)."""
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    return caller.store.credentials.api_tokens_of(user.id, window)


def find_token(caller: Caller, token_id: str) -> ApiToken:
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    number = validation.row_id(token_id)
    row = caller.store.credentials.api_token_of(user.id, number) if number is not None else None
    if row is None:
        raise NotFound(f"No API token {token_id[:40]}.")
    return row


def revoke_token(caller: Caller, token_id: str) -> None:
    """Revoke one of the caller's API tokens: refused from its next request on, everywhere."""
    row = find_token(caller, token_id)
    user = caller.require_user()
    caller.store.delete(row)
    caller.store.flush()
    caller.store.credentials.changed()
    caller.audit("api-token.revoke", target=f"user:{user.username}", token_id=row.id,
                 name=row.name)
