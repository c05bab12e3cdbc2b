"""Input rules every form shares: usernames, email addresses and the
password policy, as WTForms validators and the checks behind them."""

import gzip
import re
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from wtforms.validators import ValidationError

from app.email_undo import EmailUndo
from app.extensions import db
from app.models import User, canonical_username, normalize_password
from app.signups import PendingSignup


def strip(value):
    return value.strip() if isinstance(value, str) else value


class Username:
    """Usernames appear in URLs (/user/<name>): safe characters only, never
    a bare path segment like "." or "..", and one canonical form."""

    def __call__(self, form, field) -> None:
        name = field.data or ''
        rule = 'Use letters, digits, dots, dashes and underscores only.'
        if not re.fullmatch(r'[\w.-]+', name):
            raise ValidationError(rule)
        key = canonical_username(name)
        if not re.fullmatch(r'[\w.-]+', key) or set(key) == {'.'}:
            raise ValidationError(rule + ' A name cannot be only dots.')
        if len(key) > 64:
            raise ValidationError('Use at most 64 characters.')


def email_taken(
    address: str, except_user: User | None = None, reserved: bool = True
) -> bool:
    """`address` is the canonical form (NormalizedEmail ran first). An
    address another account gave up less than a week ago counts as taken
    (unless `reserved` is False): its owner can still undo the change
    (app.email_undo)."""
    query = sa.select(User.id).where(User.email == address)
    if except_user is not None:
        query = query.where(User.id != except_user.id)
    if db.session.scalar(query) is not None:
        return True
    return reserved and EmailUndo.reserved(address, except_user)


def username_taken(name: str, except_user: User | None = None) -> bool:
    """An account's name, or one a pending sign-up holds until it expires."""
    query = sa.select(User.id).where(User.username_key == canonical_username(name))
    if except_user is not None:
        query = query.where(User.id != except_user.id)
    return db.session.scalar(query) is not None or PendingSignup.holds(name)


def normalize_email(address: str) -> str:
    """The canonical, lower-cased form; raises EmailNotValidError."""
    result = validate_email(address.strip(), check_deliverability=False)
    return result.normalized.lower()


class NormalizedEmail:
    """Validate with email-validator and replace the data by its normal form."""

    def __call__(self, form, field) -> None:
        try:
            field.data = normalize_email(field.data or '')
        except EmailNotValidError as exc:
            raise ValidationError(str(exc)) from exc


# Password policy after NIST SP 800-63B: length and a blocklist, no rules.
MIN_PASSWORD = 8
MAX_PASSWORD = 256  # generous; nothing is ever truncated
COMMON_PASSWORDS = Path(__file__).with_name('common-passwords.txt.gz')


@cache
def common_passwords() -> frozenset[str]:
    """Django's list of 20,000 common passwords (from Royce Williams' set)."""
    with gzip.open(COMMON_PASSWORDS, 'rt', encoding='utf-8') as f:
        return frozenset(line.strip().casefold() for line in f if line.strip())


SITE_WORDS = ('microblog',)
MIN_CONTEXT_WORD = 3  # shorter names and local parts are not checked


def context_words(username: str | None, email: str | None) -> list[str]:
    """Words a password must not contain: the username, the email's local
    part and the site's name (NIST SP 800-63B's "context-specific words")."""
    words = [canonical_username(username or ''), *SITE_WORDS]
    words.append(normalize_password((email or '').rpartition('@')[0]).casefold())
    return [w for w in words if len(w) >= MIN_CONTEXT_WORD]


def password_problem(password: str, context: list[str] = ()) -> str | None:
    """Why `password` is refused, or None if it is acceptable."""
    password = normalize_password(password or '')
    if len(password) < MIN_PASSWORD:
        return f'Use at least {MIN_PASSWORD} characters.'
    if len(password) > MAX_PASSWORD:
        return f'Use at most {MAX_PASSWORD} characters.'
    folded = password.casefold()
    if folded in common_passwords():
        return 'This password is too common; choose one that is harder to guess.'
    if any(word in folded for word in context):
        return (
            'Do not use your username, your email address or the site name '
            'in your password.'
        )
    return None


class PasswordPolicy:
    """WTForms validator applying `password_problem`; a form can name the
    context words through a `password_context()` method."""

    def __call__(self, form, field) -> None:
        words = getattr(form, 'password_context', lambda: [])()
        problem = password_problem(field.data, words)
        if problem:
            raise ValidationError(problem)
