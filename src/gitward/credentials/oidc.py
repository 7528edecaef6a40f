"""OIDC ID tokens of CI jobs (workload identity federation, docs/oidc-federation.md): reading
one before its signature is checked, fetching the issuer's keys, and verifying it.

The keys come from the issuer's discovery document (`{issuer}/.well-known/openid-configuration`
→ `jwks_uri`), both fetched under the outbound rule (outbound.py: https, or an address in
GITWARD_OUTBOUND_ALLOWED_NETWORKS; every address judged; the request pinned to the checked
address), without redirects, with timeouts and a size limit. They are cached per process for
`KEYS_SECONDS`; a token naming a key id the cached set lacks makes one refetch of the key set,
at most once per `REFETCH_SECONDS` per issuer (an issuer rotating its keys is followed at
once, a stream of made-up key ids costs one fetch a minute).

Only RS256 and ES256 signatures are accepted: never `none`, never an HMAC (whose key would be
public), whatever the token's header asks.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gitward.outbound import MAX_URL_LENGTH, OutboundRefused, OutboundRules

ALGORITHMS = ("RS256", "ES256")
#: How long an issuer's keys are trusted without asking again.
KEYS_SECONDS = 600.0
#: At most one refetch for an unknown key id per issuer in this time.
REFETCH_SECONDS = 60.0
#: After a failed fetch of an issuer's keys, how long exchanges are refused without asking
#: it again (anyone can write a token naming a trusted issuer: an issuer that is down must
#: not cost a fetch per request).
FAILURE_SECONDS = 10.0
#: Clock skew allowed on exp, nbf and iat.
LEEWAY_SECONDS = 60
#: The longest an ID token may live (exp - iat): CI tokens live minutes.
MAX_LIFETIME_SECONDS = 24 * 3600
MAX_DOCUMENT_BYTES = 256 * 1024
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
MAX_CLAIM_TEXT = 1024
MAX_JTI = 255


class TokenRefused(Exception):
    """The ID token cannot be exchanged; `reason` says why (for the client and the audit),
    `error` is the RFC 6749 / RFC 8693 error code."""

    def __init__(self, reason: str, *, issuer: str | None = None,
                 subject: str | None = None, jti: str | None = None,
                 error: str = "invalid_grant") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.issuer = issuer
        self.subject = subject
        self.jti = jti


@dataclass(frozen=True)
class UnverifiedToken:
    """A JWT as presented: its signature not yet checked, so nothing in it is believed
    except as the key to look further (which issuer, which key)."""

    value: str = field(repr=False)
    issuer: str
    algorithm: str
    key_id: str | None
    subject: str | None
    jti: str | None


@dataclass(frozen=True)
class VerifiedToken:
    """An ID token whose signature, issuer and times check."""

    issuer: str
    subject: str
    jti: str
    audiences: tuple[str, ...]
    expires_on: datetime
    claims: dict[str, Any]


def _b64json(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def _text(value: object) -> str | None:
    return value[:MAX_CLAIM_TEXT] if isinstance(value, str) else None


def read_unverified(value: str) -> UnverifiedToken:
    """The issuer and key id of a compact JWS; TokenRefused when it is not one we verify."""
    parts = value.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenRefused("subject_token is not a signed JWT (header.payload.signature)")
    try:
        header, claims = _b64json(parts[0]), _b64json(parts[1])
    except (ValueError, UnicodeError, binascii.Error):
        raise TokenRefused("subject_token is not a signed JWT: its parts are not "
                           "base64url JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenRefused("subject_token is not a signed JWT: its parts are not JSON objects")
    raw_issuer = claims.get("iss")
    # Whole, as trusts hold it (a URL of at most MAX_URL_LENGTH characters), or none.
    issuer = raw_issuer if isinstance(raw_issuer, str) and len(raw_issuer) <= MAX_URL_LENGTH \
        else None
    subject, jti = _text(claims.get("sub")), _text(claims.get("jti"))
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        shown = algorithm[:20] if isinstance(algorithm, str) else "missing"
        raise TokenRefused(f"The ID token's algorithm {shown!r} is not accepted: only "
                           f"{' and '.join(ALGORITHMS)}", issuer=issuer, subject=subject, jti=jti)
    if "crit" in header:
        raise TokenRefused("The ID token has critical header parameters, which are not "
                           "supported", issuer=issuer, subject=subject, jti=jti)
    if not issuer:
        raise TokenRefused("The ID token has no issuer (iss) a trust could name",
                           subject=subject, jti=jti)
    key_id = header.get("kid")
    if key_id is not None and (not isinstance(key_id, str) or len(key_id) > 255):
        raise TokenRefused("The ID token's key id (kid) is not a short string",
                           issuer=issuer, subject=subject, jti=jti)
    return UnverifiedToken(value, issuer, str(algorithm), key_id, subject, jti)


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRefused(f"The ID token's {name} is not a number")
    return float(value)


def check_claims(claims: dict[str, Any], issuer: str, now: float) -> VerifiedToken:
    """The registered claims of a token whose signature verified: `iss` exactly the issuer,
    `exp` ahead, `nbf` and `iat` not ahead (with LEEWAY_SECONDS), a short life, a `sub` and
    a `jti`, an `aud`."""
    subject, jti = _text(claims.get("sub")), claims.get("jti")
    known = {"issuer": issuer, "subject": subject,
             "jti": jti[:MAX_JTI] if isinstance(jti, str) else None}
    try:
        if claims.get("iss") != issuer:
            raise TokenRefused("The ID token's issuer (iss) is not the issuer it was checked "
                               "against")
        expires, not_before, issued = (_number(claims, n) for n in ("exp", "nbf", "iat"))
        if expires is None:
            raise TokenRefused("The ID token has no expiry (exp)")
        if now >= expires + LEEWAY_SECONDS:
            raise TokenRefused("The ID token has expired (exp)")
        if not_before is not None and now + LEEWAY_SECONDS < not_before:
            raise TokenRefused("The ID token is not valid yet (nbf)")
        if issued is None:
            raise TokenRefused("The ID token has no issue time (iat)")
        if now + LEEWAY_SECONDS < issued:
            raise TokenRefused("The ID token was issued in the future (iat)")
        if expires - issued > MAX_LIFETIME_SECONDS:
            raise TokenRefused("The ID token lives longer than a day (exp - iat): not a CI "
                               "job's token")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise TokenRefused("The ID token has no subject (sub)")
        if len(claims["sub"]) > MAX_CLAIM_TEXT:
            raise TokenRefused(f"The ID token's subject is over {MAX_CLAIM_TEXT} characters")
        if not isinstance(jti, str) or not jti:
            raise TokenRefused("The ID token has no jti: it could not be accepted only once")
        if len(jti) > MAX_JTI:
            raise TokenRefused(f"The ID token's jti is over {MAX_JTI} characters")
        audience = claims.get("aud")
        audiences = (audience,) if isinstance(audience, str) else audience
        if (not isinstance(audiences, list | tuple) or not audiences
                or not all(isinstance(a, str) for a in audiences)):
            raise TokenRefused("The ID token has no audience (aud)")
    except TokenRefused as refused:
        refused.issuer, refused.subject, refused.jti = (
            known["issuer"], known["subject"], known["jti"])
        raise
    return VerifiedToken(issuer, claims["sub"], jti, tuple(audiences),
                         datetime.fromtimestamp(expires, UTC), claims)


@dataclass
class _IssuerKeys:
    jwks_uri: str
    keys: KeySet
    key_ids: frozenset[str]
    fetched: float
    #: When the key set was last fetched again for an unknown key id (None: not yet).
    refetched: float | None


def _key_set(document: Any) -> KeySet:
    """The signing keys of a JWKS document (RSA and EC keys not marked for encryption)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise TokenRefused("The issuer's JWKS is not a JSON object with a list of keys")
    wanted = [k for k in document["keys"] if isinstance(k, dict)
              and k.get("kty") in ("RSA", "EC") and k.get("use", "sig") == "sig"]
    if not wanted:
        raise TokenRefused("The issuer's JWKS holds no RSA or EC signing key")
    try:
        return KeySet.import_key_set({"keys": wanted})
    except (JoseError, ValueError, TypeError, KeyError):
        raise TokenRefused("The issuer's JWKS holds a key that cannot be read") from None


class IssuerKeyCache:
    """Each issuer's keys, fetched under the outbound rule and cached (see the module)."""

    def __init__(
        self,
        rules: OutboundRules,
        *,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.rules = rules
        self.clock = clock
        self.transport = transport
        self._entries: dict[str, _IssuerKeys] = {}
        self._failures: dict[str, tuple[float, str]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        #: How many documents were fetched (discovery and JWKS): for tests and metrics.
        self.fetches = 0

    def forget(self) -> None:
        with self._guard:
            self._entries.clear()

    def _lock(self, issuer: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(issuer, threading.Lock())

    def _get_json(self, url: str, what: str) -> Any:
        try:
            destination = self.rules.check(url, https_only=True)
        except OutboundRefused as refused:
            raise TokenRefused(f"The issuer's {what} may not be fetched: {refused.message}"
                               ) from None
        target, headers, extensions = destination.pinned()
        headers["Accept"] = "application/json"
        self.fetches += 1
        try:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=False, transport=self.transport,
                              trust_env=False) as client:
                request = client.build_request("GET", target, headers=headers,
                                               extensions=extensions)
                response = client.send(request, stream=True)
                try:
                    if response.status_code != 200:
                        raise TokenRefused(f"The issuer's {what} answered HTTP "
                                           f"{response.status_code}")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > MAX_DOCUMENT_BYTES:
                            raise TokenRefused(f"The issuer's {what} is over "
                                               f"{MAX_DOCUMENT_BYTES // 1024} KiB")
                finally:
                    response.close()
        except httpx.HTTPError as error:
            raise TokenRefused(f"The issuer's {what} could not be fetched: "
                               f"{type(error).__name__}") from None
        try:
            return json.loads(bytes(body))
        except ValueError:
            raise TokenRefused(f"The issuer's {what} is not JSON") from None

    def _discover(self, issuer: str) -> str:
        document = self._get_json(
            issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery document")
        if not isinstance(document, dict) or document.get("issuer") != issuer:
            raise TokenRefused("The issuer's discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise TokenRefused("The issuer's discovery document has no jwks_uri")
        return jwks_uri

    def keys_for(self, issuer: str, key_id: str | None) -> KeySet:
        """The issuer's keys, holding `key_id` if the issuer has it."""
        with self._lock(issuer):
            now = self.clock()
            entry = self._entries.get(issuer)
            if entry is None or now - entry.fetched >= KEYS_SECONDS:
                failed = self._failures.get(issuer)
                if failed is not None and now < failed[0]:
                    raise TokenRefused(failed[1])
                try:
                    entry = self._fetch(issuer, self._discover(issuer), now)
                except TokenRefused as refused:
                    self._failures[issuer] = (now + FAILURE_SECONDS, refused.reason)
                    raise
                self._failures.pop(issuer, None)
            elif (key_id is not None and key_id not in entry.key_ids
                  and (entry.refetched is None or now - entry.refetched >= REFETCH_SECONDS)):
                # On failure the keys known stay, and the unknown key id is refused.
                with contextlib.suppress(TokenRefused):
                    entry = self._fetch(issuer, entry.jwks_uri, now, refetch=entry)
            return entry.keys

    def _fetch(self, issuer: str, jwks_uri: str, now: float,
               refetch: _IssuerKeys | None = None) -> _IssuerKeys:
        """Fetch the key set: in full (refetch None), or again for an unknown key id, which
        counts against the refetch limit even when it fails."""
        if refetch is not None:
            refetch.refetched = now
        keys = _key_set(self._get_json(jwks_uri, "JWKS"))
        ids = frozenset(k.kid for k in keys.keys if k.kid)
        if refetch is None:
            entry = _IssuerKeys(jwks_uri, keys, ids, now, None)
        else:
            entry = _IssuerKeys(jwks_uri, keys, ids, refetch.fetched, now)
        self._entries[issuer] = entry
        return entry

    def verify(self, token: UnverifiedToken, now: float | None = None) -> VerifiedToken:
        """Signature against the issuer's keys, then the registered claims."""
        def refused(reason: str) -> TokenRefused:
            return TokenRefused(reason, issuer=token.issuer, subject=token.subject,
                                jti=token.jti)

        try:
            keys = self.keys_for(token.issuer, token.key_id)
        except TokenRefused as failure:
            raise refused(failure.reason) from None
        if token.key_id is not None and token.key_id not in {k.kid for k in keys.keys}:
            raise refused(f"The issuer has no key {token.key_id[:60]!r} (kid)")
        if token.key_id is None and len(keys.keys) != 1:
            raise refused("The ID token names no key (kid) and the issuer has several")
        try:
            decoded = jwt.decode(token.value, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError, TypeError, KeyError):
            raise refused("The ID token's signature does not verify") from None
        if decoded.header.get("alg") not in ALGORITHMS:  # never trust a header's choice
            raise refused("The ID token's algorithm is not accepted")
        claims = decoded.claims
        if not isinstance(claims, dict):
            raise refused("The ID token's payload is not a JSON object")
        return check_claims(claims, token.issuer, time.time() if now is None else now)
