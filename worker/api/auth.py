"""The API token: with `api.token` set, every request but /healthz must carry it.

`Authorization: Bearer <token>` is what scripts send. A browser cannot add that header to a link, so the
token is also accepted as the password of HTTP Basic authentication (any user name): the search page and
the Atom feeds then work in a browser's or feed reader's own login prompt. Tokens are compared in constant
time.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# Liveness probes (systemd, load balancers, uptime checks) rarely can send a header, and the answer only
# says whether polling is healthy: it stays open.
OPEN_PATHS = frozenset({"/healthz"})
REALM = "newswatch"


def presented_token(authorization: bytes) -> bytes | None:
    """The token in an Authorization header value (Bearer, or Basic's password), None when there is none."""
    scheme, _, credentials = authorization.strip().partition(b" ")
    scheme = scheme.lower()
    if scheme == b"bearer":
        return credentials.strip()
    if scheme == b"basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        _user, colon, password = decoded.partition(b":")
        return password if colon else None
    return None


class TokenAuth:
    """ASGI middleware: 401 for any request to a closed path without the right token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode("utf-8")

    def _allowed(self, scope: Scope) -> bool:
        if scope["path"] in OPEN_PATHS:
            return True
        for name, value in scope["headers"]:
            if name == b"authorization":
                token = presented_token(value)
                return token is not None and hmac.compare_digest(token, self._token)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        response = JSONResponse({"detail": "this server requires its API token"}, status_code=401)
        response.headers.append("WWW-Authenticate", f'Bearer realm="{REALM}"')
        response.headers.append("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')
        await response(scope, receive, send)
