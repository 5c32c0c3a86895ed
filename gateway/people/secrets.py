"""Random secrets handed out once (API tokens, session ids, phone-link codes) and the hashes
kept instead of them. A SHA-256 suffices: the secrets are random, not chosen by people."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "sgt_"  # recognisable in a leaked log or file, for secret scanners


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def new_id() -> str:
    return secrets.token_hex(6)
