"""How the app compares names and keeps passwords: normal forms, the
configured hash, and the random seed of an account's local avatar."""

import secrets
import unicodedata

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash


def normalize_password(password: str) -> str:
    """NFKC, as NIST SP 800-63B asks, so visually equal input hashes alike."""
    return unicodedata.normalize('NFKC', password)


def hash_password(password: str) -> str:
    """The configured method: scrypt, or a cheap one under TestConfig."""
    method = current_app.config['PASSWORD_HASH_METHOD']
    return generate_password_hash(normalize_password(password), method=method)


def password_matches(password_hash: str | None, password: str) -> bool:
    """Whether `password` is the one `password_hash` was made from."""
    if not password_hash:
        return False
    return check_password_hash(password_hash, normalize_password(password))


def canonical_username(name: str) -> str:
    """The form uniqueness and sign-in use: "Carol", "carol" and "ｃａｒｏｌ"
    are one name."""
    return unicodedata.normalize('NFKC', name).casefold()


def new_avatar_seed() -> str:
    """What a local identicon is drawn from: random, so an avatar says
    nothing about the email address (a hash of it would)."""
    return secrets.token_hex(16)


def username_key_default(context) -> str:
    """The canonical name as a column default, for bulk inserts, which
    bypass the ORM's `validates` hook."""
    return canonical_username(context.get_current_parameters()['username'])
