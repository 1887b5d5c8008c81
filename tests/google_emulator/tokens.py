"""Opaque, tamper-evident tokens (sync, page and calendar-list tokens): JSON + HMAC-SHA256."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any

__all__ = ["TokenCodec"]

_MAC_BYTES = 16


class TokenCodec:
    """Signs small JSON payloads with a key that lives as long as the emulator."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def encode(self, payload: list[Any]) -> str:
        """``payload`` as an opaque token."""
        raw = json.dumps(payload, separators=(",", ":")).encode()
        mac = hmac.new(self._key, raw, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")

    def decode(self, token: str, kind: str) -> list[Any] | None:
        """The payload of a token of ``kind`` (its first member); ``None`` if forged or damaged."""
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        mac, raw = blob[:_MAC_BYTES], blob[_MAC_BYTES:]
        expected = hmac.new(self._key, raw, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            return None
        try:
            payload = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(payload, list) or not payload or payload[0] != kind:
            return None
        return payload
