"""Password hashes as the sample stores them, and signed bearer tokens.

Hash format: ``pbkdf2_sha256$<iterations>$<salt b64>$<key b64>`` (PBKDF2-HMAC-SHA256,
standard base64), compared in constant time. Tokens are ``<payload b64url>.<HMAC
b64url>`` signed with ``JWT_SECRET`` from the env file (a random per-process secret
when unset, so tokens then die with the process).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time

TOKEN_TTL = 8 * 3600


def verify_password(password: str, encoded: str) -> bool:
    try:
        algo, iterations, salt_b64, key_b64 = encoded.split("$")
        if algo != "pbkdf2_sha256":
            return False
        salt, key = base64.b64decode(salt_b64), base64.b64decode(key_b64)
        dk = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, int(iterations),
                                 len(key))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(dk, key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Tokens:
    def __init__(self, secret: str | None):
        self.key = (secret or secrets.token_hex(32)).encode()

    def issue(self, user_id: str, username: str, role: str) -> str:
        payload = _b64(json.dumps({"sub": user_id, "username": username, "role": role,
                                   "exp": int(time.time()) + TOKEN_TTL}).encode())
        sig = _b64(hmac.new(self.key, payload.encode(), hashlib.sha256).digest())
        return f"{payload}.{sig}"

    def check(self, token: str) -> dict | None:
        try:
            payload, sig = token.split(".")
            good = _b64(hmac.new(self.key, payload.encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(sig, good):
                return None
            claims = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return None
        return claims if claims.get("exp", 0) > time.time() else None
