"""The OAuth 2.0 authorization server's HTTP adapter (/site/oauth2/*, RFC 8414 metadata)."""
