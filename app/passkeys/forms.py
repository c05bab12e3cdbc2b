from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from app.forms import BaseForm
from app.i18n import lazy_gettext as _l
from app.passkeys.ceremonies import MAX_ANSWER
from app.validators import strip


class AnswerForm(BaseForm):
    """The browser's answer to a passkey request, posted by passkeys.js;
    `remember` and `trust` copy the page's checkboxes, where it has them."""

    credential = HiddenField(validators=[DataRequired(), Length(max=MAX_ANSWER)])
    remember = HiddenField(validators=[Length(max=1)])
    trust = HiddenField(validators=[Length(max=1)])


class RenameForm(BaseForm):
    name = StringField(
        _l('Name'),
        filters=[strip],
        validators=[DataRequired(), Length(max=64)],
        render_kw={'autocomplete': 'off'},
    )
    submit = SubmitField(_l('Rename'))


class RemoveForm(BaseForm):
    submit = SubmitField(_l('Remove'))
