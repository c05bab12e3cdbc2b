from wtforms import SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from app.forms import BaseForm, username_field
from app.i18n import lazy_gettext as _l
from app.models import User
from app.validators import username_taken


class EditProfileForm(BaseForm):
    USERNAME_TAKEN = _l('Please use a different username.')

    username = username_field()
    about_me = TextAreaField(_l('About me'), validators=[Length(max=140)])
    submit = SubmitField(_l('Save changes'))

    def __init__(self, user: User, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def validate_username(self, username) -> None:
        if username_taken(username.data, except_user=self.user):
            raise ValidationError(str(self.USERNAME_TAKEN))


def one_line_break(value):
    """Browsers send a line break as CRLF: count it as one character, as the
    composer's counter does."""
    return value.replace('\r\n', '\n') if isinstance(value, str) else value


class CountedLength(Length):
    """Length without the maxlength attribute: a browser counts UTF-16 units
    and cuts a paste short; the composer's counter (app.js) counts as the
    server does and says how many characters are too many."""

    def __init__(self, min: int = -1, max: int = -1) -> None:
        super().__init__(min, max)
        self.field_flags = {'minlength': min}


class PostForm(BaseForm):
    post = TextAreaField(
        _l('Say something'),
        filters=[one_line_break],
        validators=[DataRequired(), CountedLength(min=1, max=140)],
        render_kw={'data-counter': 'post-count', 'data-limit': 140},
    )
    submit = SubmitField(_l('Post'))
