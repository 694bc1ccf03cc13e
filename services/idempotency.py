"""One rule for idempotency keys: the request's digest is stored with its key.

A keyed call (``Deposit``'s payment reference, ``Withdraw``'s and ``RequestLicence``'s
``idempotency_key``, ``ReportUse``'s ``report_id``) stores, with its key and in the
transaction of its change, the SHA-256 of the request message it was first used for. A
later call with the same key and the same digest is a retry: it gets the first answer and
changes nothing. The same key with a different digest is refused with
``IDEMPOTENCY_KEY_REUSED`` (ALREADY_EXISTS), and nothing changes.

The digest covers the request message, not the signed envelope: a retry is signed anew
(a new timestamp and nonce), so only the message can match. It is taken over the parsed
message serialized deterministically (unknown fields are refused before a handler runs), so
two encodings of the same message match. Per-attempt proofs inside a message are left out
the same way as the envelope: ``ReportUse``'s ``presentation`` carries its own timestamp
and nonce, and a retried report presents anew.
"""

from __future__ import annotations

import hashlib

from google.protobuf.message import Message

#: The domain that separates these digests from every other hash of the exchange.
DOMAIN = b"licentia.v1.idempotency\x00"


def request_digest(method: str, request: Message, *, omit: tuple[str, ...] = ()) -> bytes:
    """The SHA-256 of ``method`` and ``request`` (without the fields ``omit`` names)."""
    if omit:
        copy = type(request)()
        copy.CopyFrom(request)
        for name in omit:
            copy.ClearField(name)
        request = copy
    body = request.SerializeToString(deterministic=True)
    return hashlib.sha256(DOMAIN + method.encode() + b"\x00" + body).digest()
