from wtforms import IntegerField, PasswordField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    ValidationError,
)
from wtforms.widgets import HiddenInput

from app import reauth
from app.auth.forms import email_field, password_fields
from app.forms import BaseForm
from app.guesses import CurrentPassword
from app.i18n import NAMES, tag
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.identity import canonical_username
from app.models import User
from app.validators import MAX_PASSWORD, context_words, strip


def current_password_field() -> PasswordField:
    """Every form asking for the current password uses this field: its
    answers count against the account's one guess budget (app.guesses)."""
    return PasswordField(
        _l('Current password'),
        validators=[DataRequired(), Length(max=MAX_PASSWORD), CurrentPassword()],
        render_kw={'autocomplete': 'current-password'},
    )


class CurrentPasswordForm(BaseForm):
    """A form for a sensitive change: it needs the current password, unless
    this session proved who it is within REAUTH_WINDOW (app.reauth); a right
    answer is such a proof."""

    current_password = current_password_field()

    def __init__(self, user: User, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if reauth.recently_proven():
            del self['current_password']

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if valid and 'current_password' in self:
            reauth.mark_proven()  # committed with the change
        return valid


class ChangePasswordForm(CurrentPasswordForm):
    password, password2 = password_fields(_l('New password'))
    submit = SubmitField(_l('Change password'))

    def password_context(self) -> list[str]:
        return context_words(self.user.username, self.user.email)


class ChangeEmailForm(CurrentPasswordForm):
    email = email_field(_l('New email address'))
    submit = SubmitField(_l('Send a confirmation link'))

    def validate_email(self, field) -> None:
        # Whether another account has the address is never said here: the
        # sender tells that address's owner instead (app.account.email).
        if field.data == self.user.email:
            raise ValidationError(_('That is already your email address.'))


class SignOutOthersForm(CurrentPasswordForm):
    submit = SubmitField(_l('Sign out all other sessions'))


class SignOutOneForm(BaseForm):
    # An int4 id: int() refuses "²" (a digit, not a decimal) with a form error.
    session = IntegerField(
        widget=HiddenInput(), validators=[InputRequired(), NumberRange(1, 2**31 - 1)]
    )
    submit = SubmitField(_l('Sign out'))


class LanguageForm(BaseForm):
    """The language of the account's pages and emails, each named in itself."""

    language = SelectField(
        _l('Language'),
        choices=[
            SelectChoice(code, name, render_kw={'lang': tag(code)})
            for code, name in NAMES.items()
        ],
    )
    submit = SubmitField(_l('Save language'))


class ConfirmForm(BaseForm):
    """The one click that uses an emailed link."""

    submit = SubmitField(_l('Confirm'))


class DeleteAccountForm(BaseForm):
    confirm = StringField(
        _l('Type your username to confirm'),
        filters=[strip],
        validators=[DataRequired(), Length(max=64)],
        render_kw={'autocomplete': 'off', 'spellcheck': 'false'},
    )
    submit = SubmitField(_l('Delete my account'))

    def __init__(self, user: User, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def validate_confirm(self, field) -> None:
        if canonical_username(field.data) != self.user.username_key:
            raise ValidationError(
                _(
                    'Type your username, %(name)s, exactly as shown.',
                    name=self.user.username,
                )
            )
