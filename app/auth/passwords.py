"""Password policy after NIST SP 800-63B: length and a blocklist, no rules."""

import gzip
from functools import cache
from pathlib import Path

from wtforms.validators import ValidationError

from app.models import normalize_password

MIN_LENGTH = 8
MAX_LENGTH = 256  # generous; nothing is ever truncated
COMMON_PASSWORDS = Path(__file__).with_name('common-passwords.txt.gz')


@cache
def common_passwords() -> frozenset[str]:
    """Django's list of 20,000 common passwords (from Royce Williams' set)."""
    with gzip.open(COMMON_PASSWORDS, 'rt', encoding='utf-8') as f:
        return frozenset(line.strip().casefold() for line in f if line.strip())


def password_problem(password: str) -> str | None:
    """Why `password` is refused, or None if it is acceptable."""
    password = normalize_password(password or '')
    if len(password) < MIN_LENGTH:
        return f'Use at least {MIN_LENGTH} characters.'
    if len(password) > MAX_LENGTH:
        return f'Use at most {MAX_LENGTH} characters.'
    if password.casefold() in common_passwords():
        return 'This password is too common; choose one that is harder to guess.'
    return None


class PasswordPolicy:
    """WTForms validator applying `password_problem`."""

    def __call__(self, form, field) -> None:
        problem = password_problem(field.data)
        if problem:
            raise ValidationError(problem)
