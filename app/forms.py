"""Form pieces every blueprint shares: EmptyForm and the input rules
(username, email, password)."""

import gzip
from functools import cache
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from flask_wtf import FlaskForm
from wtforms import SubmitField
from wtforms.validators import Regexp, ValidationError

from app.models import normalize_password


class EmptyForm(FlaskForm):
    """Only a CSRF token and a button: for POST-only actions."""

    submit = SubmitField('Submit')


# Usernames appear in URLs (/user/<username>): keep them to safe characters.
USERNAME_RULE = Regexp(
    r'^[\w.-]+$', message='Use letters, digits, dots, dashes and underscores only.'
)


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


def password_problem(password: str) -> str | None:
    """Why `password` is refused, or None if it is acceptable."""
    password = normalize_password(password or '')
    if len(password) < MIN_PASSWORD:
        return f'Use at least {MIN_PASSWORD} characters.'
    if len(password) > MAX_PASSWORD:
        return f'Use at most {MAX_PASSWORD} characters.'
    if password.casefold() in common_passwords():
        return 'This password is too common; choose one that is harder to guess.'
    return None


class PasswordPolicy:
    """WTForms validator applying `password_problem`."""

    def __call__(self, form, field) -> None:
        problem = password_problem(field.data)
        if problem:
            raise ValidationError(problem)
