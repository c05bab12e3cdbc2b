"""Input rules every form shares: usernames, email addresses and the
password policy, as WTForms validators and the checks behind them."""

import gzip
import re
import unicodedata
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from confusable_homoglyphs import confusables
from email_validator import EmailNotValidError, validate_email
from flask_babel import get_locale
from wtforms.validators import ValidationError

from app.email_undo import EmailUndo
from app.extensions import db
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.i18n import ngettext
from app.identity import canonical_username, normalize_password
from app.models import User
from app.signups import PendingSignup
from app.usernames import held_for_another


def strip(value):
    return value.strip() if isinstance(value, str) else value


# Default_Ignorable_Code_Point (Unicode's DerivedCoreProperties.txt): drawn
# as nothing. \w accepts the Hangul fillers (U+3164 ...): they are letters.
INVISIBLE = re.compile(
    '[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f'
    '\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8'
    '\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]'
)
# A dot before two letters (evil.com, john.smith), as a host name has.
HOST_LIKE = re.compile(r'\.[^\W\d_]{2}')
# What `link_like` finds, and what a person is told about it.
LINK_LIKE = {
    'symbol': _l(
        'A username cannot look like a web or email address (no "@", "://" or "www.").'
    ),
    'host': _l(
        'A username cannot look like a web or email address '
        '(no dot before two letters, as in "name.com").'
    ),
}
CONFUSABLE = _l(
    'Use the letters of one script: this name mixes letters that look alike '
    '(such as Latin and Cyrillic).'
)


def at_most(limit: int) -> str:
    return ngettext(
        'Use at most %(num)d character.', 'Use at most %(num)d characters.', limit
    )


def link_like(text: str) -> str | None:
    """What would make a mail client turn `text` into a link, if anything:
    'symbol' ("@", "://" or "www.") or 'host' (a dot before two letters, as
    in "name.com"), a key of LINK_LIKE."""
    text = unicodedata.normalize('NFKC', text or '').casefold()
    if '@' in text or '://' in text or 'www.' in text:
        return 'symbol'
    if HOST_LIKE.search(text):
        return 'host'
    return None


class Username:
    """Usernames appear in URLs (/user/<name>): safe characters only, never
    a bare path segment like "." or "..", and one canonical form. A new or
    changed name also cannot look like a link, hold invisible characters or
    mix look-alike scripts (Unicode TS #39); existing names keep working."""

    def __call__(self, form, field) -> None:
        name = field.data or ''
        if not re.fullmatch(r'[\w.-]+', name):
            raise ValidationError(
                _('Use letters, digits, dots, dashes and underscores only.')
            )
        key = canonical_username(name)
        if not re.fullmatch(r'[\w.-]+', key) or set(key) == {'.'}:
            raise ValidationError(
                _(
                    'Use letters, digits, dots, dashes and underscores only. '
                    'A name cannot be only dots.'
                )
            )
        if len(key) > 64:
            raise ValidationError(at_most(64))
        user = getattr(form, 'user', None)
        if user is None or key != user.username_key:
            new_name_rules(name, key)


def new_name_rules(name: str, key: str) -> None:
    if INVISIBLE.search(name) or INVISIBLE.search(key):
        raise ValidationError(_('Use no invisible or blank characters.'))
    problem = link_like(key)
    if problem:
        raise ValidationError(str(LINK_LIKE[problem]))
    if confusables.is_dangerous(key):
        raise ValidationError(str(CONFUSABLE))


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
    """Used by another account, held by a pending sign-up until it expires,
    or released by an account less than USERNAME_HOLD_DAYS ago
    (app.usernames)."""
    key = canonical_username(name)
    query = sa.select(User.id).where(User.username_key == key)
    if except_user is not None:
        query = query.where(User.id != except_user.id)
    if db.session.scalar(query) is not None or PendingSignup.holds(name):
        return True
    return held_for_another(key, except_user)


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
            # email-validator says precisely what is wrong, in English only:
            # other languages get one sentence of their own.
            if str(get_locale()) == 'en':
                raise ValidationError(str(exc)) from exc
            raise ValidationError(
                _('Enter a valid email address, like name@example.com.')
            ) from exc


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
        return ngettext(
            'Use at least %(num)d character.',
            'Use at least %(num)d characters.',
            MIN_PASSWORD,
        )
    if len(password) > MAX_PASSWORD:
        return at_most(MAX_PASSWORD)
    folded = password.casefold()
    if folded in common_passwords():
        return _('This password is too common; choose one that is harder to guess.')
    if any(word in folded for word in context):
        return _(
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
