"""Form pieces every blueprint shares: the base form, EmptyForm and the
shared fields. The input rules they apply live in app/validators.py."""

import re

from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length

from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.validators import Username, strip

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
            field.errors = [_('Remove the control characters.')]
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

    submit = SubmitField(_l('Submit'))


def username_field(**kwargs) -> StringField:
    return StringField(
        _l('Username'),
        filters=[strip],
        validators=[DataRequired(), Length(max=64), Username()],
        **kwargs,
    )
