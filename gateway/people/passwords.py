"""Password hashes: argon2id (argon2-cffi), with the library's parameters (RFC 9106's
low-memory choice). Hashing takes tens of milliseconds on purpose: callers on the event loop
run it in a thread."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher(type=Type.ID)

MIN_LENGTH = 10


class WeakPassword(ValueError):
    pass


def check_strength(password: str, login: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if login.lower() in password.lower():
        raise WeakPassword("a password may not contain the login")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# Verified against when the login is unknown, so that an unknown login takes as long as a
# wrong password (no telling which logins exist by the answer's time).
DUMMY_HASH = hash_password("not a password of anyone")
