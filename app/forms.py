"""Form pieces every blueprint shares: the base form, EmptyForm and the
input rules (username, email, password)."""

import gzip
import re
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length, ValidationError

from app.extensions import db
from app.models import User, canonical_username, normalize_password

# What no database column can hold: NUL, and halves of surrogate pairs.
UNSTORABLE = re.compile('[\x00\ud800-\udfff]')
ECHO_LIMIT = 256  # a refused value longer than its field is not echoed whole


def unstorable(value) -> bool:
    return isinstance(value, str) and UNSTORABLE.search(value) is not None


class BaseForm(FlaskForm):
    """Every form: refuses what the database cannot store, with a form error,
    and never echoes a refused overlong value back whole."""

    def validate(self, extra_validators=None) -> bool:
        # Before any validator can take the value to the database.
        refused = [field for field in self if unstorable(field.data)]
        for field in refused:
            field.errors = ['Remove the control characters.']
        valid = not refused and super().validate(extra_validators)
        for field in self:
            if field.errors and isinstance(field.data, str):
                field.data = field.data[: max_length(field)]
        return valid


def max_length(field) -> int:
    for validator in field.validators:
        if isinstance(validator, Length) and validator.max >= 0:
            return validator.max
    return ECHO_LIMIT


class EmptyForm(BaseForm):
    """Only a CSRF token and a button: for POST-only actions."""

    submit = SubmitField('Submit')


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


def username_field(**kwargs) -> StringField:
    return StringField(
        'Username',
        filters=[strip],
        validators=[DataRequired(), Length(max=64), Username()],
        **kwargs,
    )


def email_taken(address: str, except_user: User | None = None) -> bool:
    """`address` is the canonical form (NormalizedEmail ran first)."""
    query = sa.select(User.id).where(User.email == address)
    if except_user is not None:
        query = query.where(User.id != except_user.id)
    return db.session.scalar(query) is not None


def username_taken(name: str, except_user: User | None = None) -> bool:
    query = sa.select(User.id).where(User.username_key == canonical_username(name))
    if except_user is not None:
        query = query.where(User.id != except_user.id)
    return db.session.scalar(query) is not None


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


def field_html(field) -> Markup:
    """A field as Bootstrap 5 markup: the label tied to the input, errors
    inline under it and named by aria-describedby, aria-invalid on error.
    The same markup as Bootstrap-Flask's render_field, built in Python: as
    nested Jinja macros it took half of the sign-in page's time."""
    id_, name = escape(field.id), escape(field.name)
    kind = getattr(field.widget, 'input_type', None)
    if kind == 'hidden':
        value = escape(field._value())
        return Markup(f'<input id="{id_}" name="{name}" type="hidden" value="{value}">')
    if kind == 'submit':
        label = escape(field.label.text)
        return Markup(
            f'<input class="btn btn-primary" id="{id_}" name="{name}" '
            f'type="submit" value="{label}">'
        )
    invalid, aria, errors = '', '', ''
    if field.errors:
        invalid = ' is-invalid'
        aria = f' aria-invalid="true" aria-describedby="{id_}-error"'
        named = f' id="{id_}-error"'  # the first error, for aria-describedby
        errors = ''.join(
            f'\n<div class="invalid-feedback d-block"{named if i == 0 else ""}>'
            f'{escape(error)}</div>'
            for i, error in enumerate(field.errors)
        )
    label = escape(field.label.text)
    if kind == 'checkbox':
        checked = ' checked' if field.data else ''
        return Markup(
            f'<div class="mb-3 form-check">\n<input class="form-check-input{invalid}" '
            f'id="{id_}" name="{name}" type="checkbox" value="y"{checked}{aria}>\n'
            f'<label class="form-check-label" for="{id_}">{label}</label>{errors}\n'
            '</div>'
        )
    attrs = f'class="form-control{invalid}" id="{id_}" name="{name}"'
    if field.flags.required:
        attrs += ' required'
    if field.flags.maxlength:
        attrs += f' maxlength="{escape(field.flags.maxlength)}"'
    for key, value in (field.render_kw or {}).items():
        attrs += f' {escape(key)}="{escape(value)}"'
    attrs += aria
    if field.type == 'TextAreaField':
        control = f'<textarea {attrs} rows="3">{escape(field._value())}</textarea>'
    elif kind == 'password':
        control = f'<input type="password" {attrs}>'
    else:
        value = escape(field._value())
        control = f'<input type="{escape(kind or "text")}" {attrs} value="{value}">'
    required = ' required' if field.flags.required else ''
    return Markup(
        f'<div class="mb-3{required}">\n'
        f'<label class="form-label" for="{id_}">{label}</label>\n'
        f'{control}{errors}\n</div>'
    )
