"""Calls through the exchange's HTTP/JSON gateway, signed: the recipe for any language.

The gateway (``licentia-server --http HOST:PORT``, docs/http.md) serves every method as
``POST /v1/{package.Service}/{Method}`` with the request in the protobuf JSON mapping. A
signed method needs four headers over the **exact body bytes sent**:

1. serialize the request to JSON once (any JSON the mapping accepts) and keep those bytes;
2. ``payload = u32be(len(method)) || method || SHA-256(body) || u64be(timestamp) || nonce``
   with ``method`` = ``/licentia.v1.Service/Method`` (UTF-8), ``timestamp`` the Unix time in
   seconds, ``nonce`` 16 random bytes never used again;
3. ``signature = Ed25519(key, "licentia.v1.http-request" || 0x00 || payload)``;
4. send the bytes of step 1 as the body, with ``x-licentia-key: ed25519:…``,
   ``x-licentia-timestamp: <decimal>``, ``x-licentia-nonce`` and ``x-licentia-signature``
   (both base64url without padding).

:func:`signed_headers` does steps 2-4 (:func:`licentia.request.sign_http_request`);
:class:`GatewayClient` does it all with the standard library only (``urllib``), and maps a
refusal to an :class:`~licentia.transport.errors.ExchangeError` carrying the server's reason.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Mapping
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf import json_format
from google.protobuf.message import Message

from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.request import sign_http_request

from .errors import ExchangeError, ExchangeUnavailable

__all__ = ["GatewayClient", "gateway_path", "json_body", "signed_headers"]


def gateway_path(method: str) -> str:
    """The gateway's URL path of ``method`` (``/licentia.v1.Service/Method``)."""
    return "/v1" + method


def json_body(request: Message | Mapping[str, Any]) -> bytes:
    """A request's JSON body: a message in the protobuf JSON mapping, or a mapping as is."""
    if isinstance(request, Message):
        doc: Any = json_format.MessageToDict(request)
    else:
        doc = dict(request)
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def signed_headers(
    key: PrivateKey, method: str, body: bytes, now: int | None = None
) -> dict[str, str]:
    """The four signature headers of a gateway call of ``method`` whose body is ``body``."""
    when = int(time.time()) if now is None else now
    return dict(sign_http_request(key, method, body, when))


class GatewayClient:
    """Calls to the gateway at ``base_url`` (``http://HOST:PORT``), signed with ``key``
    (unsigned when None). ``ssl_context`` checks an ``https://`` gateway's certificate."""

    def __init__(
        self,
        base_url: str,
        key: PrivateKey | None = None,
        *,
        clock: Callable[[], int] = lambda: int(time.time()),
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.clock = clock
        self.timeout = timeout
        self.ssl_context = ssl_context

    def call(self, method: str, request: Message | Mapping[str, Any]) -> dict[str, Any]:
        """One call of ``method``; the response in the JSON mapping (every field present)."""
        with self._open(method, json_body(request)) as response:
            doc: dict[str, Any] = json.loads(response.read())
        return doc

    def stream(
        self, method: str, request: Message | Mapping[str, Any]
    ) -> Generator[dict[str, Any], None, None]:
        """The messages of a response stream (server-sent events) as they come; a refusal
        during the stream raises :class:`ExchangeError`. Closing the iterator ends the call."""
        with self._open(method, json_body(request), timeout=None) as response:
            event = "message"
            for raw in response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    doc = json.loads(line[5:])
                    if event == "error":
                        raise _refusal(doc)
                    yield doc
                elif not line:
                    event = "message"

    def _open(self, method: str, body: bytes, timeout: float | None = -1.0) -> Any:
        headers = {"content-type": "application/json"}
        if self.key is not None:
            headers.update(signed_headers(self.key, method, body, self.clock()))
        req = urllib.request.Request(  # noqa: S310 (the caller's gateway URL)
            self.base_url + gateway_path(method), data=body, headers=headers, method="POST"
        )
        try:
            return urllib.request.urlopen(  # noqa: S310
                req,
                timeout=self.timeout if timeout == -1.0 else timeout,
                context=self.ssl_context,
            )
        except urllib.error.HTTPError as e:
            try:
                doc = json.loads(e.read())
            except ValueError:
                doc = {}
            raise _refusal(doc, e.code) from None
        except OSError as e:
            raise ExchangeUnavailable(
                Reason.UNAVAILABLE,
                grpc.StatusCode.UNAVAILABLE,
                f"could not reach the gateway at {self.base_url}: {e}",
            ) from None


def _refusal(doc: Any, status: int = 0) -> ExchangeError:
    """The :class:`ExchangeError` of a refusal's JSON body."""
    error = doc.get("error", {}) if isinstance(doc, dict) else {}
    try:
        reason = Reason[str(error.get("reason"))]
        code = grpc.StatusCode[str(error.get("code"))]
    except KeyError:
        reason, code = Reason.INTERNAL, grpc.StatusCode.UNKNOWN
    message = str(error.get("message") or f"the gateway answered HTTP {status}")
    return ExchangeError(reason, code, message)
