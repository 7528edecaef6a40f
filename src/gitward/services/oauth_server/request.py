"""The request authlib's server reads, and the answer it gives, independent of the web
framework (the Starlette adapter builds and renders them: web/oauth/routes.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import (
    OAuth2Payload,
    OAuth2Request,
)

from gitward.services.caller import Caller
from gitward.services.oauth_server.clients import ConsumerClient, IssuedCode, IssuedToken
from gitward.storage.models import (
    User,
)


class _Payload(OAuth2Payload):
    def __init__(self, data: dict[str, str]) -> None:
        self._data = data
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in data.items():
            self._datalist[name].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class OAuthRequest(OAuth2Request):
    """One OAuth request as authlib's grants and endpoints read it.

    `params` are the OAuth parameters (the query of an authorization request, the form of a
    token request), `form` the url-encoded body; each parameter is there once (the adapter
    refuses repeats). `headers` must look names up case-insensitively (Starlette's do).

    authlib's constructor refuses any URI that is not https (or loopback). Gitward leaves the
    transport to the deployment (TLS ends at its proxy, and every other credential travels the
    same way, docs/oauth.md), so the attributes authlib's requests carry are set here instead;
    tests/unit/test_oauth_request.py keeps the two in step.
    """

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        params: dict[str, str],
        form: dict[str, str] | None = None,
        *,
        client_ip: str | None = None,
    ) -> None:
        self.method = method
        self.uri = uri
        self.headers = headers
        self._body = None
        self.payload = _Payload(params)
        self.client: ConsumerClient | None = None
        self.auth_method: str | None = None
        self.user: User | None = None
        self.authorization_code: IssuedCode | None = None
        self.refresh_token: IssuedToken | None = None
        self.credential = None
        self._scope: str | None = None
        self._args = params
        self._form = form if form is not None else params
        self.client_ip = client_ip
        # Set when an error answer revoked something: the unit of work commits all the same.
        self.commit_on_error = False
        # The signed-in user granting access on the authorize page.
        self.caller: Caller | None = None

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass
class OAuthAnswer:
    """What an endpoint answers: status, JSON body (or none), headers."""

    status: int
    body: dict[str, Any] | None
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)

    @location.setter
    def location(self, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != "location"]
        self.headers.append(("Location", value))

    @property
    def error(self) -> str | None:
        return self.body.get("error") if self.body else None
