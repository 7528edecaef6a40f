"""A small OIDC issuer on loopback for the federation tests: discovery document and JWKS
served by an HTTP server thread, ID tokens signed with real keys generated here."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey


class Issuer:
    """`url` is the issuer; `keys` the signing keys it publishes (rotate with `rotate`)."""

    def __init__(self) -> None:
        self.keys: list[RSAKey | ECKey] = [RSAKey.generate_key(2048, parameters={"kid": "k1"})]
        self.requests: list[str] = []
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/keys",
                            "id_token_signing_alg_values_supported": ["RS256", "ES256"]}
                elif self.path == "/keys":
                    body = {"keys": [k.as_dict(private=False) for k in issuer.keys]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def rotate(self, kid: str, *, ec: bool = False) -> None:
        """Publish only a new key from now on."""
        key: RSAKey | ECKey = (
            ECKey.generate_key("P-256", parameters={"kid": kid}) if ec
            else RSAKey.generate_key(2048, parameters={"kid": kid})
        )
        self.keys = [key]

    def claims(self, sub: str, aud: str | list[str] = "gitward", **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.url, "sub": sub, "aud": aud, "iat": now,
                                  "nbf": now, "exp": now + 300, "jti": uuid.uuid4().hex}
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], key: RSAKey | ECKey | None = None) -> str:
        key = key or self.keys[0]
        alg = "ES256" if isinstance(key, ECKey) else "RS256"
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key)

    def token(self, sub: str, aud: str | list[str] = "gitward", **extra: Any) -> str:
        return self.sign(self.claims(sub, aud, **extra))


def unsigned(claims: dict[str, Any]) -> str:
    """The same claims with `alg: none` and no signature."""
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def exchange_form(token: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", **extra}
