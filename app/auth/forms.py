from wtforms import BooleanField, EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from app.forms import BaseForm, username_field
from app.i18n import lazy_gettext as _l
from app.models import User
from app.validators import (
    MAX_PASSWORD,
    NormalizedEmail,
    PasswordPolicy,
    context_words,
    strip,
    username_taken,
)

USERNAME_TAKEN = _l('Please use a different username.')


def password_fields(label=None):
    password = PasswordField(
        _l('Password') if label is None else label,
        validators=[DataRequired(), PasswordPolicy()],
        render_kw={'autocomplete': 'new-password', 'maxlength': MAX_PASSWORD},
    )
    password2 = PasswordField(
        _l('Repeat password'),
        validators=[DataRequired(), EqualTo('password', _l('Passwords must match.'))],
        render_kw={'autocomplete': 'new-password', 'maxlength': MAX_PASSWORD},
    )
    return password, password2


def email_field(label=None) -> EmailField:
    return EmailField(
        _l('Email') if label is None else label,
        validators=[DataRequired(), Length(max=254), NormalizedEmail()],
        render_kw={'autocomplete': 'email'},
    )


class LoginForm(BaseForm):
    username = StringField(
        _l('Username'),
        filters=[strip],
        validators=[DataRequired(), Length(max=64)],
        # "webauthn": the browser offers this site's passkeys in the field's
        # autofill list (passkeys.js starts the conditional request).
        render_kw={'autocomplete': 'username webauthn'},
    )
    password = PasswordField(
        _l('Password'),
        validators=[DataRequired(), Length(max=MAX_PASSWORD)],
        render_kw={'autocomplete': 'current-password'},
    )
    remember_me = BooleanField(_l('Keep me signed in'))
    submit = SubmitField(_l('Sign in'))


class RegistrationForm(BaseForm):
    username = username_field(render_kw={'autocomplete': 'username'})
    email = email_field()
    password, password2 = password_fields()
    submit = SubmitField(_l('Create account'))

    def password_context(self) -> list[str]:
        return context_words(self.username.data, self.email.data)

    def validate_username(self, username) -> None:
        if username_taken(username.data):
            raise ValidationError(str(USERNAME_TAKEN))


class ResetPasswordRequestForm(BaseForm):
    email = email_field()
    submit = SubmitField(_l('Send me a reset link'))


class ResetPasswordForm(BaseForm):
    password, password2 = password_fields(_l('New Password'))
    submit = SubmitField(_l('Set new password'))

    def __init__(self, user: User, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def password_context(self) -> list[str]:
        return context_words(self.user.username, self.user.email)
