"""OAuth consumers of a workspace: created, listed, deleted and given a new secret by its
owners, in person (Action.WORKSPACE_CREDENTIALS is interactive only)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from gitward.credentials import codec
from gitward.credentials.oauth import OAuthTokens
from gitward.domain.permissions import Action, Scope, parse_scope_list
from gitward.services import validation
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, NotFound
from gitward.services.oauth_server.protocol import GRANT_CLIENT
from gitward.services.validation import row_id
from gitward.services.workspaces import find_workspace
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import (
    OAuthConsumer,
    Workspace,
)

MAX_NAME_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 4096
MAX_URL_LENGTH = 2048
KEY_LENGTH = 18


def workspace_for(caller: Caller, slug: str) -> Workspace:
    """The workspace, if the caller may manage its consumers (owners, in person)."""
    return find_workspace(caller, slug, Action.WORKSPACE_CREDENTIALS)


def _name(value: object) -> str:
    return validation.required_text(value, "consumer name", MAX_NAME_LENGTH)


def _description(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION_LENGTH:
        raise BadRequest(f"description must be text of at most {MAX_DESCRIPTION_LENGTH} "
                         "characters.")
    return validation.description(value, MAX_DESCRIPTION_LENGTH)


def callback_url(value: object) -> str | None:
    """An absolute http(s) URL without a fragment (RFC 6749 §3.1.2), or None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH:
        raise BadRequest(f"callback_url must be a URL of at most {MAX_URL_LENGTH} characters.")
    if any(ord(c) < 33 or ord(c) == 127 for c in value):
        raise BadRequest("callback_url may not contain spaces or control characters.")
    if validation.has_lone_surrogate(value):
        raise BadRequest("callback_url must be valid Unicode text.")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise BadRequest("callback_url is not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequest("callback_url must be an absolute http or https URL.")
    if parts.fragment or "#" in value:
        raise BadRequest("callback_url may not contain a fragment (#).")
    if "@" in parts.netloc:
        # `https://app.example.com@evil.example/` reads as the first host and goes to the
        # second: user info has no place in a redirect target.
        raise BadRequest("callback_url may not contain user info (user:password@).")
    return value


def _is_private(value: object) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest("is_private must be true or false.")
    return value


def consumer_scopes(value: object) -> frozenset[Scope]:
    try:
        return parse_scope_list(value)
    except ValueError as error:
        raise BadRequest(str(error)) from None


@dataclass(frozen=True)
class Created:
    consumer: OAuthConsumer
    secret: str


def create_consumer(
    caller: Caller,
    oauth: OAuthTokens,
    workspace: Workspace,
    *,
    name: object,
    description: object = None,
    callback: object = None,
    is_private: object = None,
    scopes: object = None,
) -> Created:
    clean_name = _name(name)
    clean_description = _description(description)
    clean_callback = callback_url(callback)
    private = _is_private(is_private)
    granted = consumer_scopes(scopes)
    creator = caller.require_user()
    secret, sealed = oauth.new_consumer_secret()
    consumer = OAuthConsumer(
        workspace_id=workspace.id,
        key="".join(secrets.choice(codec.BASE62) for _ in range(KEY_LENGTH)),
        secret_sealed=sealed,
        name=clean_name,
        description=clean_description,
        callback_url=clean_callback,
        is_private=private,
        scopes=" ".join(sorted(s.value for s in granted)),
        created_by_id=creator.id,
        created_by_name=creator.username,
    )
    caller.store.add(consumer)
    caller.store.flush()
    caller.audit(
        "oauth-consumer.create",
        target=f"workspace:{workspace.slug}",
        consumer_id=consumer.id,
        key=consumer.key,
        name=clean_name,
        scopes=consumer.scopes.split(),
        is_private=private,
    )
    return Created(consumer, secret)


def list_consumers(
    caller: Caller, workspace: Workspace, window: Window = EVERYTHING
) -> Page[OAuthConsumer]:
    """One window of the workspace's consumers, newest first (the caller was checked)."""
    return caller.store.oauth.consumers_in(workspace.id, window)


def find_consumer(caller: Caller, workspace: Workspace, consumer_id: str) -> OAuthConsumer:
    number = row_id(consumer_id)
    consumer = None
    if number is not None:
        consumer = caller.store.oauth.consumer_in(workspace.id, number)
    if consumer is None:
        raise NotFound(f"No OAuth consumer {consumer_id[:40]} in this workspace.")
    return consumer


def update_consumer(
    caller: Caller, workspace: Workspace, consumer: OAuthConsumer, changes: dict[str, object]
) -> None:
    """Change the fields given (`name`, `description`, `callback_url`, `is_private`,
    `scopes`). A change that takes something away ends what the old settings allowed:

    - a scope dropped: every code and token the consumer was issued is revoked, and users
      authorize again (tokens keep the scopes they were granted, so they would outlive it);
    - private to public: its client credentials tokens end (public consumers may not have
      them);
    - a new callback URL: codes not yet exchanged are void.
    """
    unknown = set(changes) - {"name", "description", "callback_url", "is_private", "scopes"}
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))[:200]}.")
    clean: dict[str, object] = {}
    if "name" in changes:
        clean["name"] = _name(changes["name"])
    if "description" in changes:
        clean["description"] = _description(changes["description"])
    if "callback_url" in changes:
        clean["callback_url"] = callback_url(changes["callback_url"])
    if "is_private" in changes:
        clean["is_private"] = _is_private(changes["is_private"])
    old_scopes = frozenset(consumer.scopes.split())
    if "scopes" in changes:
        clean["scopes"] = " ".join(sorted(s.value for s in consumer_scopes(changes["scopes"])))
    oauth = caller.store.oauth
    revoked: list[str] = []
    if "scopes" in clean and old_scopes - frozenset(str(clean["scopes"]).split()):
        oauth.end_everything_of(consumer.id)
        revoked.append("every code and token (a scope was dropped)")
    elif clean.get("is_private") is False and consumer.is_private:
        oauth.end_tokens_of_grant(consumer.id, GRANT_CLIENT)
        revoked.append("client credentials tokens (now public)")
    if "callback_url" in clean and clean["callback_url"] != consumer.callback_url:
        oauth.void_unused_codes(consumer.id)
    for field, value in clean.items():
        setattr(consumer, field, value)
    # Cached token look-ups carry the consumer's name: every process reads it again.
    caller.store.credentials.changed()
    caller.audit(
        "oauth-consumer.update",
        target=f"workspace:{workspace.slug}",
        consumer_id=consumer.id,
        key=consumer.key,
        changed=sorted(clean),
        revoked=revoked,
    )


def delete_consumer(caller: Caller, workspace: Workspace, consumer: OAuthConsumer) -> None:
    """Delete the consumer: every code and token it was issued goes with it (cascade)."""
    consumer_id = consumer.id
    caller.store.delete(consumer)
    caller.store.flush()
    caller.store.credentials.changed()
    caller.audit(
        "oauth-consumer.delete",
        target=f"workspace:{workspace.slug}",
        consumer_id=consumer_id,
        key=consumer.key,
        name=consumer.name,
    )


def regenerate_secret(
    caller: Caller, oauth: OAuthTokens, workspace: Workspace, consumer: OAuthConsumer
) -> str:
    """A new secret; the old one stops working now, and so do the tokens it obtained by
    itself (client credentials and JWT grants). Tokens users granted stay."""
    secret, sealed = oauth.new_consumer_secret()
    consumer.secret_sealed = sealed
    caller.store.oauth.end_consumer_own_tokens(consumer.id)
    caller.store.credentials.changed()
    caller.audit(
        "oauth-consumer.secret",
        target=f"workspace:{workspace.slug}",
        consumer_id=consumer.id,
        key=consumer.key,
    )
    return secret
