from wtforms import BooleanField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from app.forms import BaseForm
from app.i18n import lazy_gettext as _l
from app.validators import strip


def code_field(label: str, numeric: bool = True) -> StringField:
    render_kw = {'autocomplete': 'one-time-code', 'autocapitalize': 'none'}
    if numeric:
        render_kw['inputmode'] = 'numeric'
    return StringField(
        label,
        filters=[strip],
        validators=[DataRequired(), Length(max=32)],
        render_kw=render_kw,
    )


class SetupForm(BaseForm):
    code = code_field(_l('The 6-digit code the app shows'))
    submit = SubmitField(_l('Turn on'))


class VerifyForm(BaseForm):
    code = code_field(_l('Code from your authenticator app, or a recovery code'), False)
    trust = BooleanField(_l('Trust this browser for 30 days'))
    submit = SubmitField(_l('Sign in'))


class RegenerateForm(BaseForm):
    submit = SubmitField(_l('Make new recovery codes'))


class DisableForm(BaseForm):
    submit = SubmitField(_l('Turn off the authenticator app'))
