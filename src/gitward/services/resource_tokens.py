"""Use cases of repository, project and workspace access tokens (Gitward's REST for them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from gitward.credentials import narrowing
from gitward.credentials.resource import InvalidScopes, ResourceAccessTokens, parse_token_scopes
from gitward.domain import networks, refs
from gitward.domain.bbql import NO_CRITERIA, Criteria
from gitward.domain.permissions import Action, ResourceKind
from gitward.services import validation
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, NotFound
from gitward.services.projects import find_project
from gitward.services.repositories import find_repository
from gitward.services.workspaces import find_workspace
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import ResourceAccessToken, utcnow

MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class RefFields:
    """How a surface's bodies spell the ref-scoped write fields (for the messages)."""

    ref_patterns: str
    fast_forward_only: str


CLOUD_FIELDS = RefFields("ref_patterns", "fast_forward_only")
SERVER_FIELDS = RefFields("refPatterns", "fastForwardOnly")
#: A field left as it is (a modification that does not send it).
KEEP: object = object()


#: Proof that a Resource was made by `resolve`, after the access check (see Resource).
_CHECKED = object()


@dataclass(frozen=True)
class Resource:
    """Where a token lives, once `resolve` has checked that the caller may manage its tokens.

    Only `resolve` makes these: the constructor refuses to run without the module's private
    proof, so a service handed a Resource knows the access check happened.
    """

    kind: ResourceKind
    label: str
    workspace_id: int
    project_id: int | None
    repository_id: int | None
    _proof: object = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._proof is not _CHECKED:
            raise TypeError("a Resource comes only from resource_tokens.resolve")


def resolve(
    caller: Caller,
    kind: ResourceKind,
    workspace: str,
    project_key: str | None = None,
    repo_slug: str | None = None,
) -> Resource:
    """The resource, if the caller may manage its access tokens (admins, in person)."""
    if kind is ResourceKind.REPOSITORY:
        if repo_slug is None:
            raise ValueError("a repository is named by its slug")
        repo = find_repository(caller, workspace, repo_slug, Action.REPO_CREDENTIALS)
        return Resource(
            kind, f"repository:{workspace}/{repo.slug}", repo.workspace_id, None, repo.id,
            _CHECKED,
        )
    if kind is ResourceKind.PROJECT:
        if project_key is None:
            raise ValueError("a project is named by its key")
        project = find_project(caller, workspace, project_key, Action.PROJECT_CREDENTIALS)
        return Resource(
            kind, f"project:{workspace}/{project.key}", project.workspace_id, project.id, None,
            _CHECKED,
        )
    if kind is ResourceKind.WORKSPACE:
        ws = find_workspace(caller, workspace, Action.WORKSPACE_CREDENTIALS)
        return Resource(kind, f"workspace:{ws.slug}", ws.id, None, None, _CHECKED)
    raise ValueError(f"no access tokens on a {kind.value}")


def _name(value: object) -> str:
    return validation.required_text(value, "token name", MAX_NAME_LENGTH)


def _expires_on(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("expires_on must be an ISO 8601 date and time, e.g. 2027-01-31T00:00:00Z")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"expires_on must be an ISO 8601 date and time, not {value[:40]!r}"
        ) from None
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # its offset takes it outside years 1-9999
        raise BadRequest(f"expires_on is out of range: {value[:40]!r}") from None
    if moment <= utcnow():
        raise BadRequest("expires_on must be in the future.")
    return moment


@dataclass(frozen=True)
class Created:
    token: ResourceAccessToken
    secret: str


def create_token(
    caller: Caller,
    tokens: ResourceAccessTokens,
    resource: Resource,
    *,
    name: object,
    scopes: object,
    expires_on: object = None,
    allowed_ips: object = None,
    allowed_ips_field: str = "allowed_ips",
    ref_patterns: object = None,
    fast_forward_only: object = None,
    fields: RefFields | None = None,
) -> Created:
    clean_name = _name(name)
    try:
        granted = parse_token_scopes(resource.kind, scopes)
    except InvalidScopes as error:
        raise BadRequest(str(error)) from None
    expiry = _expires_on(expires_on)
    allowed = validation.allowed_ips(allowed_ips, allowed_ips_field)
    names = fields or CLOUD_FIELDS
    patterns = validation.ref_patterns(ref_patterns, names.ref_patterns)
    forward_only = validation.flag(fast_forward_only, names.fast_forward_only)
    secret, token_hash = tokens.new_secret(resource.kind)
    creator = caller.require_user()
    token = ResourceAccessToken(
        kind=resource.kind.value,
        workspace_id=resource.workspace_id,
        project_id=resource.project_id,
        repository_id=resource.repository_id,
        name=clean_name,
        token_hash=token_hash,
        narrowing_key=narrowing.narrowing_key(secret),
        scopes=" ".join(sorted(s.value for s in granted)),
        expires_on=expiry,
        created_by_id=creator.id,
        created_by_name=creator.username,
        allowed_ips=networks.stored(allowed),
        ref_patterns=refs.stored(patterns),
        fast_forward_only=forward_only,
    )
    caller.store.add(token)
    caller.store.flush()
    caller.audit(
        f"{resource.kind.value}-token.create",
        target=resource.label,
        token_id=token.id,
        name=clean_name,
        scopes=token.scopes.split(),
        allowed_ips=list(allowed or ()),
        ref_patterns=list(patterns) if patterns is not None else None,
        fast_forward_only=forward_only,
    )
    return Created(token, secret)


def list_tokens(
    caller: Caller,
    resource: Resource,
    window: Window = EVERYTHING,
    criteria: Criteria = NO_CRITERIA,
) -> Page[ResourceAccessToken]:
    """One window of the resource's access tokens, newest first (or by `criteria`'s sort),
    matching `criteria`'s query."""
    return caller.store.credentials.resource_tokens(
        resource.kind.value, resource.workspace_id, resource.project_id, resource.repository_id,
        window, criteria,
    )


def get_token(caller: Caller, resource: Resource, token_id: str) -> ResourceAccessToken:
    """One of the resource's access tokens (never its secret)."""
    token = None
    number = validation.row_id(token_id)
    if number is not None:
        token = caller.store.credentials.resource_token(
            resource.kind.value,
            resource.workspace_id,
            resource.project_id,
            resource.repository_id,
            number,
        )
    if token is None:
        raise NotFound(f"No access token {token_id[:40]} on this {resource.kind.value}.")
    return token


def modify_token(
    caller: Caller,
    resource: Resource,
    token_id: str,
    *,
    name: object = None,
    scopes: object = None,
    allowed_ips: object = KEEP,
    allowed_ips_field: str = "allowed_ips",
    ref_patterns: object = KEEP,
    fast_forward_only: object = KEEP,
    fields: RefFields | None = None,
) -> ResourceAccessToken:
    """A new name, new scopes (None: unchanged), a new address allow-list (KEEP:
    unchanged; None or empty: anywhere), new ref patterns or fast-forward rule (KEEP:
    unchanged; null patterns: every ref); the secret and the expiry stay. Narrower or wider
    scopes, lists and patterns count from the token's next request."""
    token = get_token(caller, resource, token_id)
    changed: dict[str, object] = {}
    if name is not None:
        token.name = changed["name"] = _name(name)
    if scopes is not None:
        try:
            granted = parse_token_scopes(resource.kind, scopes)
        except InvalidScopes as error:
            raise BadRequest(str(error)) from None
        token.scopes = " ".join(sorted(s.value for s in granted))
        changed["scopes"] = token.scopes.split()
    if allowed_ips is not KEEP:
        allowed = validation.allowed_ips(allowed_ips, allowed_ips_field)
        token.allowed_ips = networks.stored(allowed)
        changed["allowed_ips"] = list(allowed or ())
    names = fields or CLOUD_FIELDS
    if ref_patterns is not KEEP:
        patterns = validation.ref_patterns(ref_patterns, names.ref_patterns)
        token.ref_patterns = refs.stored(patterns)
        changed["ref_patterns"] = list(patterns) if patterns is not None else None
    if fast_forward_only is not KEEP:
        token.fast_forward_only = validation.flag(fast_forward_only, names.fast_forward_only)
        changed["fast_forward_only"] = token.fast_forward_only
    caller.store.flush()
    if changed.keys() - {"name"}:
        caller.store.credentials.changed()  # cached look-ups hold the old scopes
    caller.audit(
        f"{resource.kind.value}-token.modify",
        target=resource.label,
        token_id=token.id,
        **changed,
    )
    return token


def revoke_token(caller: Caller, resource: Resource, token_id: str) -> None:
    token = get_token(caller, resource, token_id)
    caller.store.delete(token)
    caller.store.flush()
    caller.store.credentials.changed()
    caller.audit(
        f"{resource.kind.value}-token.revoke",
        target=resource.label,
        token_id=token.id,
        name=token.name,
    )
