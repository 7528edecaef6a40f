"""Workload identity federation (docs/oidc-federation.md): a resource's trusts in OIDC
issuers, and the exchange of a CI job's ID token for a short-lived access token of the
resource.

A trust mints access tokens, so managing trusts is managing the resource's credentials:
`resource_tokens.resolve` decides it (repository, project or workspace admins, in person:
REPO_CREDENTIALS, PROJECT_CREDENTIALS, WORKSPACE_CREDENTIALS are interactive only).

What an exchange hands out is a repository, project or workspace access token of the trust's
resource (a real `resource_access_tokens` row, `gwrep_`/`gwprj_`/`gwwsp_`, expiring after the
trust's `ttl_seconds`), so that it is authenticated, bounded and decided exactly as the
resource's other access tokens are. Deleting the trust deletes every token it minted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from gitward.credentials.oidc import TokenRefused, VerifiedToken
from gitward.credentials.resource import InvalidScopes, ResourceAccessTokens, parse_token_scopes
from gitward.domain.globs import BadGlob, compile_glob
from gitward.domain.permissions import ResourceKind, implied_scopes, parse_scopes
from gitward.outbound import OutboundRefused, OutboundRules
from gitward.services import validation
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, NotFound
from gitward.services.resource_tokens import Resource
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import OidcTrust, ResourceAccessToken, utcnow
from gitward.storage.store import Store

MAX_TTL_SECONDS = 3600
MIN_TTL_SECONDS = 60
MAX_CLAIMS = 20
MAX_GLOB = 1024
#: Claims a trust names by their own fields, or that the exchange checks itself.
REGISTERED_CLAIMS = frozenset({"iss", "aud", "sub", "exp", "nbf", "iat", "jti"})
FIELDS = frozenset({"issuer", "audience", "subject", "claims", "scopes", "ttl_seconds"})
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


# -- trusts -------------------------------------------------------------------------------------


def _issuer(value: object, rules: OutboundRules) -> str:
    if value is None or value == "":
        raise BadRequest("issuer is required: the https URL of the OIDC issuer, e.g. "
                         "https://token.actions.githubusercontent.com")
    if not isinstance(value, str):
        raise BadRequest("issuer must be a string")
    try:
        parts = rules.parse(value)
    except OutboundRefused as refused:
        raise BadRequest(f"issuer: {refused.message}") from None
    if parts.query or parts.fragment or value.endswith("#") or value.endswith("?"):
        raise BadRequest("issuer: an OIDC issuer has no query or fragment")
    try:
        rules.check(value, https_only=True)
    except OutboundRefused as refused:
        raise BadRequest(f"issuer: {refused.message}") from None
    return value


def _glob(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{what} must be a non-empty string (a glob)")
    if len(value) > MAX_GLOB:
        raise BadRequest(f"{what} must be at most {MAX_GLOB} characters")
    if not validation.is_one_line(value) or validation.has_lone_surrogate(value):
        raise BadRequest(f"{what} must not contain control characters")
    try:
        compile_glob(value)
    except BadGlob as error:
        raise BadRequest(f"{what} is not a valid glob: it {error}") from None
    return value


def _subject(value: object) -> str:
    if value is None:
        raise BadRequest("subject is required: a glob the token's sub must match, e.g. "
                         "repo:acme/app:ref:refs/heads/*")
    subject = _glob(value, "subject")
    if subject[0] in "*?":
        raise BadRequest("subject must start with a literal character: a leading wildcard "
                         "would accept the jobs of every repository the issuer serves")
    return subject


def _claims(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest('claims must be an object of claim name to glob, e.g. '
                         '{"repository_owner": "acme"}')
    if len(value) > MAX_CLAIMS:
        raise BadRequest(f"claims may name at most {MAX_CLAIMS} claims")
    result: dict[str, str] = {}
    for name, glob in value.items():
        if not name or len(name) > 100 or not validation.is_one_line(name) or (
            validation.has_lone_surrogate(name)
        ):
            raise BadRequest("claims: a claim name must be 1 to 100 characters without "
                             "control characters")
        if name in REGISTERED_CLAIMS:
            raise BadRequest(f"claims: {name} is checked by the trust itself (issuer, "
                             "audience, subject) or by every exchange; it cannot be a claim "
                             "condition")
        result[name] = _glob(glob, f"claims.{name}")
    return result


def _ttl(value: object) -> int:
    if value is None:
        return MAX_TTL_SECONDS
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("ttl_seconds must be a whole number of seconds")
    if not MIN_TTL_SECONDS <= value <= MAX_TTL_SECONDS:
        raise BadRequest(f"ttl_seconds must be between {MIN_TTL_SECONDS} and "
                         f"{MAX_TTL_SECONDS}")
    return value


def create_trust(
    caller: Caller, rules: OutboundRules, resource: Resource, body: dict[str, Any]
) -> OidcTrust:
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(n[:40] for n in unknown)}; a trust "
                         f"has {', '.join(sorted(FIELDS))}")
    issuer = _issuer(body.get("issuer"), rules)
    audience = validation.required_text(body.get("audience"), "audience")
    subject = _subject(body.get("subject"))
    claims = _claims(body.get("claims"))
    try:
        scopes = parse_token_scopes(resource.kind, body.get("scopes"))
    except InvalidScopes as error:
        raise BadRequest(str(error)) from None
    ttl = _ttl(body.get("ttl_seconds"))
    creator = caller.require_user()
    trust = OidcTrust(
        kind=resource.kind.value,
        workspace_id=resource.workspace_id,
        project_id=resource.project_id,
        repository_id=resource.repository_id,
        issuer=issuer,
        audience=audience,
        subject=subject,
        claims=json.dumps(claims, sort_keys=True),
        scopes=" ".join(sorted(s.value for s in scopes)),
        ttl_seconds=ttl,
        created_by_id=creator.id,
        created_by_name=creator.username,
    )
    caller.store.add(trust)
    caller.store.flush()
    caller.audit("oidc-trust.create", target=resource.label, trust_id=trust.id,
                 issuer=issuer, audience=audience, subject=subject, claims=claims,
                 scopes=trust.scopes.split(), ttl_seconds=ttl)
    return trust


def list_trusts(caller: Caller, resource: Resource, window: Window = EVERYTHING
                ) -> Page[OidcTrust]:
    return caller.store.oidc.trusts_on(resource.kind.value, resource.workspace_id,
                                       resource.project_id, resource.repository_id, window)


def get_trust(caller: Caller, resource: Resource, trust_id: str) -> OidcTrust:
    number = validation.row_id(trust_id)
    trust = None
    if number is not None:
        trust = caller.store.oidc.trust_on(resource.kind.value, resource.workspace_id,
                                           resource.project_id, resource.repository_id, number)
    if trust is None:
        raise NotFound(f"No OIDC trust {trust_id[:40]} on this {resource.kind.value}.")
    return trust


def delete_trust(caller: Caller, resource: Resource, trust_id: str) -> None:
    """Delete the trust; every access token it minted ends on its next request."""
    trust = get_trust(caller, resource, trust_id)
    number = trust.id
    ended = caller.store.oidc.delete_trust(trust)
    caller.store.credentials.changed()
    caller.audit("oidc-trust.delete", target=resource.label, trust_id=number,
                 tokens_revoked=ended)


def trust_claims(trust: OidcTrust) -> dict[str, str]:
    loaded = json.loads(trust.claims or "{}")
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


# -- the exchange -------------------------------------------------------------------------------


def issuer_trusted(store: Store, issuer: str) -> bool:
    """Does any trust name this issuer? (Only then are its keys fetched.)"""
    return store.oidc.issuer_trusted(issuer)


def _claim_text(value: object) -> str | None:
    """A claim as a glob sees it: strings as they are, booleans and numbers as JSON writes
    them; lists and objects match nothing."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return None


def mismatch(trust: OidcTrust, token: VerifiedToken) -> str | None:
    """Why the token does not satisfy the trust (None: it does)."""
    if trust.audience not in token.audiences:
        return "audience"
    if not compile_glob(trust.subject).matches(token.subject):
        return "subject"
    for name, glob in trust_claims(trust).items():
        text = _claim_text(token.claims.get(name))
        if text is None or not compile_glob(glob).matches(text):
            return f"claim {name}"
    return None


def resource_label(store: Store, trust: OidcTrust) -> str:
    """The trust's resource as audit events name it (`repository:ws/slug`, ...)."""
    workspace = store.repos.workspace_by_id(trust.workspace_id)
    ws = workspace.slug if workspace is not None else str(trust.workspace_id)
    if trust.repository_id is not None:
        repo = store.repos.repository_by_id(trust.repository_id)
        return f"repository:{ws}/{repo.slug if repo else trust.repository_id}"
    if trust.project_id is not None:
        project = store.repos.project_by_id(trust.project_id)
        return f"project:{ws}/{project.key if project else trust.project_id}"
    return f"workspace:{ws}"


def _wanted_label(resource: str) -> str:
    """`resource` (RFC 8693) as a resource label: the label itself, or the Cloud API URL or
    path of the repository, project or workspace."""
    if resource.startswith(("repository:", "project:", "workspace:")):
        return resource
    path = [p for p in urlsplit(resource).path.split("/") if p]
    if len(path) >= 2 and path[0] == "2.0":
        rest = path[1:]
        if len(rest) == 3 and rest[0] == "repositories":
            return f"repository:{rest[1]}/{rest[2]}"
        if len(rest) == 4 and rest[0] == "workspaces" and rest[2] == "projects":
            return f"project:{rest[1]}/{rest[3]}"
        if len(rest) == 2 and rest[0] == "workspaces":
            return f"workspace:{rest[1]}"
    raise TokenRefused("resource must name a repository, project or workspace: its API URL "
                       "(…/2.0/repositories/WS/SLUG) or its label (repository:WS/SLUG)",
                       error="invalid_target")


@dataclass(frozen=True)
class Exchanged:
    body: dict[str, Any]
    trust_id: int
    label: str


def exchange(
    store: Store,
    tokens: ResourceAccessTokens,
    token: VerifiedToken,
    *,
    scope: str | None,
    resource: str | None,
    client_ip: str | None,
) -> Exchanged:
    """Mint the access token of the one trust the verified ID token satisfies."""
    known = {"issuer": token.issuer, "subject": token.subject, "jti": token.jti}
    trusts = store.oidc.trusts_of_issuer(token.issuer)
    reasons = {trust.id: mismatch(trust, token) for trust in trusts}
    matching = [t for t in trusts if reasons[t.id] is None]
    if not matching:
        differ = sorted({r for r in reasons.values() if r is not None})
        raise TokenRefused(
            "The ID token satisfies no trust of its issuer (it differs in: "
            f"{', '.join(differ) or 'no trust left'})", **known)
    labels = {t.id: resource_label(store, t) for t in matching}
    if resource:
        try:
            wanted = _wanted_label(resource).lower()
        except TokenRefused as refused:
            raise TokenRefused(refused.reason, error=refused.error, **known) from None
        matching = [t for t in matching if labels[t.id].lower() == wanted]
        if not matching:
            raise TokenRefused("No trust of that resource accepts this ID token",
                               error="invalid_target", **known)
    if len(matching) > 1:
        raise TokenRefused(
            f"{len(matching)} trusts accept this ID token; send resource= to choose one of "
            f"{', '.join(sorted(labels[t.id] for t in matching))}",
            error="invalid_target", **known)
    trust = matching[0]
    granted = parse_scopes(trust.scopes)
    if scope:
        try:
            asked = parse_scopes(scope)
        except ValueError as error:
            raise TokenRefused(str(error)[:200], error="invalid_scope", **known) from None
        # Within what the trust's scopes imply (`repository:write` covers `repository`).
        beyond = asked - implied_scopes(granted)
        if beyond:
            raise TokenRefused(
                f"The scope(s) {' '.join(sorted(s.value for s in beyond))} exceed the "
                f"trust's: {trust.scopes}", error="invalid_scope", **known)
        granted = asked
    now = utcnow()
    store.oidc.forget_expired(now)
    if store.oidc.jti_used(token.issuer, token.jti):
        raise TokenRefused("This ID token (its jti) was already exchanged", **known)
    # Kept while the ID token could still be accepted (its exp, with the leeway).
    store.oidc.spend_jti(token.issuer, token.jti, token.expires_on + timedelta(minutes=2))
    kind = ResourceKind(trust.kind)
    secret, token_hash = tokens.new_secret(kind)
    scopes_text = " ".join(sorted(s.value for s in granted))
    minted = ResourceAccessToken(
        kind=trust.kind,
        workspace_id=trust.workspace_id,
        project_id=trust.project_id,
        repository_id=trust.repository_id,
        name=f"OIDC trust {trust.id}: {_printable(token.subject)}"[:255],
        token_hash=token_hash,
        scopes=scopes_text,
        expires_on=now + timedelta(seconds=trust.ttl_seconds),
        created_by_id=trust.created_by_id,
        created_by_name=trust.created_by_name,
    )
    store.oidc.mint(trust, minted)
    trust.last_used_on = now
    label = labels[trust.id]
    store.audit.record(
        "oidc.exchange",
        actor=f"oidc-trust:{trust.id}",
        target=label,
        client_ip=client_ip,
        trust_id=trust.id,
        token_id=minted.id,
        issuer=token.issuer,
        subject=token.subject,
        jti=token.jti,
        scopes=scopes_text.split(),
        expires_on=minted.expires_on.isoformat() if minted.expires_on else None,
    )
    body = {
        "access_token": secret,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "bearer",
        "expires_in": trust.ttl_seconds,
        "scopes": scopes_text,  # Bitbucket's field
        "scope": scopes_text,  # RFC 6749's
    }
    return Exchanged(body, trust.id, label)


def _printable(text: str) -> str:
    return "".join(c if validation.is_one_line(c) and not validation.has_lone_surrogate(c)
                   else "?" for c in text)


def record_refusal(store: Store, refused: TokenRefused, client_ip: str | None) -> None:
    """The audit of a refused exchange: why, and what the token claimed (never the token)."""
    store.audit.record(
        "oidc.exchange.refused",
        actor="anonymous",
        target=f"oidc-issuer:{refused.issuer}"[:255] if refused.issuer else "oidc-issuer",
        client_ip=client_ip,
        reason=refused.reason,
        error=refused.error,
        issuer=refused.issuer,
        subject=refused.subject,
        jti=refused.jti,
    )
