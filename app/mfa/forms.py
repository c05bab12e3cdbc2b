from wtforms import BooleanField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from app.forms import BaseForm
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
    code = code_field('The 6-digit code the app shows')
    submit = SubmitField('Turn on')


class VerifyForm(BaseForm):
    code = code_field('Code from your authenticator app, or a recovery code', False)
    trust = BooleanField('Trust this browser for 30 days')
    submit = SubmitField('Sign in')


class RegenerateForm(BaseForm):
    submit = SubmitField('Make new recovery codes')


class DisableForm(BaseForm):
    submit = SubmitField('Turn off the authenticator app')
