"""Webhook signatures, for receivers (and the server that signs).

Every webhook POST carries `Tunelab-Signature: t=<unix seconds>,v1=<hex>`, where the hex
is HMAC-SHA256 with the webhook's secret over `f"{t}.{body}"` (the raw body bytes). A
receiver checks it with `verify` before it trusts the body:

    from tunelab.webhooks import verify

    if not verify(request_body, request.headers["Tunelab-Signature"], SECRET):
        return 401

`verify` compares in constant time and refuses a timestamp more than `tolerance_s` away
from the receiver's clock, so that a captured request cannot be replayed later.
Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Tunelab-Signature"
TIMESTAMP_HEADER = "Tunelab-Timestamp"
EVENT_HEADER = "Tunelab-Event"
DELIVERY_HEADER = "Tunelab-Delivery"
DEFAULT_TOLERANCE_S = 300


def digest(body: bytes, secret: str, timestamp: int) -> str:
    """The hex HMAC-SHA256 of `f"{timestamp}.{body}"` under `secret`."""
    message = str(int(timestamp)).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Tunelab-Signature` header's value for `body`, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={digest(body, secret, t)}"


def parse(signature_header: str) -> tuple[int, list[str]] | None:
    """(timestamp, v1 signatures) of a header, or None when it is malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in signature_header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(
    body: bytes,
    signature_header: str,
    secret: str,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether `signature_header` signs `body` with `secret` at a time within
    `tolerance_s` seconds of now. Several `v1=` parts are allowed (any may match)."""
    if not secret or not signature_header:
        return False
    parsed = parse(signature_header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = digest(body, secret, timestamp)
    matched = False
    for candidate in signatures:
        # Every candidate is compared (no early exit) in constant time.
        matched |= hmac.compare_digest(expected, candidate)
    return matched
