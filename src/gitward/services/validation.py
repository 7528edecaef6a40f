"""Names users choose: what they may look like. Each check raises BadRequest naming the rule."""

from __future__ import annotations

import re

from gitward.domain.networks import InvalidAllowList, parse_allowed_ips
from gitward.domain.refs import InvalidRefPatterns, parse_ref_patterns
from gitward.services.errors import BadRequest

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_WORKSPACE_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_REPO_SLUG = re.compile(r"^[a-z0-9_-][a-z0-9._-]{0,62}$")
_PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,255}$")

#: Names that mean something else on the Git and REST paths, or in credentials.
RESERVED_USERNAMES = frozenset(
    {"x-token-auth", "x-bitbucket-api-token-auth", "anonymous", "admin-bot"}
)
RESERVED_WORKSPACES = frozenset(
    {"2.0", "rest", "site", "status", "openapi.json", "docs", "static", "login", "logout",
     "account", "admin", ".well-known", "user", "users", "workspaces", "repositories",
     "scm"}
)


def username(value: str) -> str:
    name = value.strip().lower()
    if not _USERNAME.match(name) or name in RESERVED_USERNAMES:
        raise BadRequest(
            f"Invalid username: {value!r}. Use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return name


def email(value: str) -> str:
    # Lone surrogates come from command-line bytes that are not UTF-8 (surrogateescape).
    if not _EMAIL.match(value.strip()) or has_lone_surrogate(value):
        raise BadRequest(f"Invalid email address: {value!r}")
    return value.strip()


def workspace_slug(value: str) -> str:
    slug = value.strip().lower()
    if not _WORKSPACE_SLUG.match(slug) or slug in RESERVED_WORKSPACES:
        raise BadRequest(
            f"Invalid workspace slug: {value!r}. Use 1-63 lowercase letters, digits, '_' or '-', "
            "starting with a letter or digit."
        )
    return slug


def repository_slug(value: str) -> str:
    slug = value.strip().lower()
    if not _REPO_SLUG.match(slug) or slug.endswith(".git") or set(slug) <= {"."}:
        raise BadRequest(
            f"Invalid repository slug: {value!r}. Use 1-63 lowercase letters, digits, '.', '_' "
            "or '-', not starting with '.' and not ending with '.git'."
        )
    return slug


def project_key(value: str) -> str:
    key = value.strip().upper()
    if not _PROJECT_KEY.match(key):
        raise BadRequest(
            f"Invalid project key: {value!r}. Use 1-64 letters, digits or '_', starting with a "
            "letter."
        )
    return key


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def is_one_line(text: str) -> bool:
    """No control characters (NUL among them, which PostgreSQL cannot store or compare)."""
    return not _has_control(text)


def has_lone_surrogate(text: str) -> bool:
    """True if `text` holds a lone surrogate: JSON can carry one (`\\ud800`), no database
    encoding and no UTF-8 response can."""
    return any("\ud800" <= c <= "\udfff" for c in text)


def required_text(value: object, what: str, limit: int = 255) -> str:
    """A required one-line text from a JSON body (a credential's name or label), stripped.

    Control characters (NUL among them, which PostgreSQL cannot store) and lone surrogates
    (which no database encoding can, and which JSON's `\\ud800` escapes can carry) are
    refused on every database alike."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadRequest(f"A {what} is required.")
    if not isinstance(value, str):
        raise BadRequest(f"The {what} must be a string.")
    text = value.strip()
    if len(text) > limit:
        raise BadRequest(f"The {what} must be at most {limit} characters long.")
    if _has_control(text):
        raise BadRequest(f"The {what} must not contain control characters.")
    if has_lone_surrogate(text):
        raise BadRequest(f"The {what} must be valid Unicode text.")
    return text


def name(value: str, what: str, limit: int = 255) -> str:
    text = value.strip()
    if not text:
        raise BadRequest(f"The {what} must not be empty.")
    if len(text) > limit:
        raise BadRequest(f"The {what} must be at most {limit} characters long.")
    if _has_control(text):
        raise BadRequest(f"The {what} must not contain control characters.")
    if has_lone_surrogate(text):
        raise BadRequest(f"The {what} must be valid Unicode text.")
    return text


def description(value: str, limit: int = 10000) -> str:
    """Free text: any length up to `limit`, newlines and tabs allowed, but no NUL (which
    PostgreSQL cannot store) and no lone surrogates (which no database encoding can)."""
    if len(value) > limit:
        raise BadRequest(f"The description must be at most {limit} characters long.")
    if "\x00" in value:
        raise BadRequest("The description must not contain NUL characters.")
    if has_lone_surrogate(value):
        raise BadRequest("The description must be valid Unicode text.")
    return value


def branch_name(value: str, what: str = "branch") -> str:
    """A branch name as a client sent it, before it reaches git or the database: no control
    characters (git refuses them in ref names, and NUL cannot be an argument to a process) and
    no lone surrogates. Whether the branch exists is for git to say."""
    if not value or _has_control(value) or has_lone_surrogate(value):
        raise BadRequest(f"Invalid {what} name: {value[:40]!r}.")
    return value


#: The longest lifetime a token may be given in days (100 years): enough for anyone who wants
#: a token that does not expire (they can leave the expiry out), small enough that the expiry
#: date is always a date the databases and Python can hold.
MAX_EXPIRY_DAYS = 36500


def row_id(raw: str) -> int | None:
    """An id from a URL path: digits that fit a 64-bit column, else None (a 404 to the caller;
    `isdigit` alone would also take other scripts' digits and numbers too large to bind)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


def allowed_ips(value: object, field: str = "allowed_ips") -> tuple[str, ...] | None:
    """A credential's address allow-list from a request body, normalised (None: anywhere);
    a bad entry is a BadRequest naming it (`field` is how the body spells the list)."""
    try:
        return parse_allowed_ips(value, field)
    except InvalidAllowList as error:
        raise BadRequest(str(error)) from None


def ref_patterns(value: object, field: str = "ref_patterns") -> tuple[str, ...] | None:
    """A token's ref patterns from a request body (None: every ref); a bad one is a
    BadRequest naming it (`field` is how the body spells the list)."""
    try:
        return parse_ref_patterns(value, field)
    except InvalidRefPatterns as error:
        raise BadRequest(str(error)) from None


def flag(value: object, field: str) -> bool:
    """A true/false field of a request body (null or absent: false)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{field} must be true or false, not {value!r:.40}.")
    return value
