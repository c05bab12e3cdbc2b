"""Authenticator secrets are stored encrypted (AES-256-GCM) with a key
derived from SECRET_KEY by HKDF-SHA256, so a copy of the database alone
does not give the codes. Secrets sealed under a key in SECRET_KEY_FALLBACKS
still open after a rotation (and are sealed again under the new key)."""

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

VERSION = 'v1'
INFO = b'microblog authenticator secret v1'


def _key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO)
    return hkdf.derive(secret_key.encode())


def _keys() -> list[str]:
    config = current_app.config
    return [config['SECRET_KEY'], *(config.get('SECRET_KEY_FALLBACKS') or [])]


def seal(plaintext: str, context: str) -> str:
    """`plaintext` encrypted under SECRET_KEY; `context` (e.g. the account)
    is authenticated too, so a sealed value cannot be moved to another row."""
    nonce = os.urandom(12)
    box = AESGCM(_key(_keys()[0])).encrypt(nonce, plaintext.encode(), context.encode())
    return f'{VERSION}:{base64.urlsafe_b64encode(nonce + box).decode()}'


def unseal(sealed: str, context: str) -> tuple[str, bool]:
    """(plaintext, sealed under the current key); ValueError if no key opens it."""
    version, _, body = sealed.partition(':')
    if version != VERSION:
        raise ValueError('unknown sealing version')
    raw = base64.urlsafe_b64decode(body.encode())
    for index, key in enumerate(_keys()):
        try:
            box = AESGCM(_key(key)).decrypt(raw[:12], raw[12:], context.encode())
        except InvalidTag:
            continue
        return box.decode(), index == 0
    raise ValueError('no configured key opens this secret')
