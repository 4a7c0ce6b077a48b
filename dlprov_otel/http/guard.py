"""Access and error mapping for the JSON endpoints: a bearer token, and errors as HTTP statuses."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from dlprov_otel.errors import DLProvError, QueryError, StoreError

from .routes import Handler, HTTPError, Request, Response, json_response
from .sqlguard import SQLRefused

logger = logging.getLogger("dlprov.http")

RETRY_AFTER_STORE = 2  # seconds, with a 503 for a store that is unavailable
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dlprov"'}


class Unauthorized(DLProvError):
    """A missing or wrong bearer token."""


class TokenCheck:
    """Checks ``Authorization: Bearer TOKEN``; without a token anything passes."""

    def __init__(self, token: str | None) -> None:
        self.token = token or None

    @property
    def required(self) -> bool:
        return self.token is not None

    def check(self, header: str | None) -> None:
        """Raise :class:`Unauthorized` unless ``header`` carries the token."""
        if self.token is None:
            return
        if not header:
            raise Unauthorized("missing bearer token (Authorization: Bearer TOKEN)")
        scheme, _, given = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise Unauthorized("wrong bearer token")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_without_token(host: str, token: str | None, insecure: bool, access: str = "read") -> None:
    """Refuse to listen beyond loopback without a token (unless ``insecure``)."""
    if not is_loopback(host) and not token and not insecure:
        raise DLProvError(
            f"refusing to listen on {host} without a token: anyone who reaches it could {access} "
            "provenance. Give --token (or DLPROV_TOKEN), or --insecure on a trusted network"
        )


def json_api(auth: TokenCheck, handler: Handler) -> Handler:
    """``handler`` behind the token, with errors answered as JSON statuses.

    401 for the token, 403 for refused SQL, 400 for a bad query, 503 with ``Retry-After`` for
    a store that is unavailable, the status of an :class:`HTTPError`, and 500 for anything else.
    """

    def guarded(request: Request) -> Response:
        try:
            auth.check(request.header("Authorization"))
            return handler(request)
        except Unauthorized as exc:
            return json_response(401, {"error": str(exc)}, CHALLENGE, close=True)
        except HTTPError as exc:
            return exc.response()
        except SQLRefused as exc:
            return json_response(403, {"error": f"refused: {exc}"})
        except QueryError as exc:
            return json_response(400, {"error": str(exc)})
        except StoreError as exc:
            return json_response(503, {"error": f"provenance store unavailable: {exc}"},
                                 {"Retry-After": str(RETRY_AFTER_STORE)})
        except Exception as exc:
            logger.exception("request %s %s failed", request.method, request.path)
            return json_response(500, {"error": f"internal error: {type(exc).__name__}: {exc}"})

    return guarded
