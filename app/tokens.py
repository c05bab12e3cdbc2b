"""Signed, expiring, purpose-bound, single-use tokens for emailed links.

A token is an HS256 JWT naming its purpose twice (the `aud` claim and the
claim holding the account id), so a token made for one purpose is refused
for every other. It also carries a keyed digest of the account state that
the link must not survive (for a reset: the password hash and the email),
so it works once. Tokens signed with a key in SECRET_KEY_FALLBACKS still
verify after a key rotation; new ones use SECRET_KEY.
"""

import hashlib
import hmac
from collections.abc import Callable
from time import time

import jwt
from flask import current_app

# What each purpose's link must not survive.
STATE = {
    'reset_password': ('password_hash', 'email'),
    'confirm_email': ('email', 'email_confirmed'),
    'change_email': ('password_hash', 'email'),
    # Undo and "This was me" are single-use through their app.email_undo row
    # and work whatever the address has become since.
    'revert_email': (),
    'keep_email': (),
    'approve_email': ('password_hash', 'email'),
    # Survives a password change (an intruder's), dies with the address.
    'not_me': ('email',),
    # Dies with the restore (or a new deletion) and with the address.
    'restore_account': ('deleted_at', 'email'),
    # A pending sign-up (app.signups), not an account: it is deleted when
    # used, so its links die with it.
    'confirm_signup': ('email', 'password_hash'),
}


def _keys() -> list[str]:
    config = current_app.config
    return [config['SECRET_KEY'], *(config.get('SECRET_KEY_FALLBACKS') or [])]


def _digest(key: str, user, purpose: str, claims: dict) -> str:
    fields = [purpose, str(user.id)]
    fields += [str(getattr(user, name)) for name in STATE[purpose]]
    fields += [f'{k}={claims[k]}' for k in sorted(claims)]
    message = '\0'.join(fields).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:32]


def issue(user, purpose: str, expires_in: int, **claims) -> str:
    key = current_app.config['SECRET_KEY']
    now = int(time())
    payload = {
        purpose: user.id,
        'aud': f'microblog:{purpose}',
        'state': _digest(key, user, purpose, claims),
        'iat': now,
        'exp': now + expires_in,
        **claims,
    }
    return jwt.encode(payload, key, algorithm='HS256')


def _decode(
    token: str, purpose: str, verify_exp: bool = True
) -> tuple[dict | None, str, str | None]:
    """(payload, reason, key): the first key that verifies the signature."""
    if not isinstance(token, str) or len(token) > 4096:
        return None, 'invalid', None
    for key in _keys():
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=['HS256'],
                audience=f'microblog:{purpose}',
                options={
                    'require': ['exp', 'aud', purpose, 'state'],
                    'verify_exp': verify_exp,
                },
            )
        except jwt.ExpiredSignatureError:
            return None, 'expired', None
        except jwt.InvalidTokenError:
            continue
        return payload, 'ok', key
    return None, 'invalid', None


def check(token: str, purpose: str, load: Callable) -> tuple:
    """(user, reason, claims): reason is 'ok', 'expired', 'used' or 'invalid';
    `load(id)` returns the account or None.

    'used' means the account changed since the link was made (it was used,
    or the password or email changed).
    """
    payload, reason, key = _decode(token, purpose)
    if payload is None:
        return None, reason, {}
    user_id = payload[purpose]
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return None, 'invalid', {}
    user = load(user_id)
    if user is None:
        return None, 'invalid', {}
    standard = {purpose, 'aud', 'state', 'iat', 'exp'}
    claims = {k: v for k, v in payload.items() if k not in standard}
    expected = _digest(key, user, purpose, claims)
    if not hmac.compare_digest(str(payload['state']), expected):
        return None, 'used', claims
    return user, 'ok', claims


def subject(token: str, purpose: str) -> int | None:
    """The account id of a genuine token for `purpose`, even an expired one
    (to offer a new link without asking for the address again)."""
    payload, _, _ = _decode(token, purpose, verify_exp=False)
    user_id = payload[purpose] if payload else None
    return user_id if type(user_id) is int else None
