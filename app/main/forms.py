from wtforms import SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from app.forms import BaseForm, username_field
from app.models import User
from app.validators import username_taken


class EditProfileForm(BaseForm):
    USERNAME_TAKEN = 'Please use a different username.'

    username = username_field()
    about_me = TextAreaField('About me', validators=[Length(max=140)])
    submit = SubmitField('Save changes')

    def __init__(self, user: User, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def validate_username(self, username) -> None:
        if username_taken(username.data, except_user=self.user):
            raise ValidationError(self.USERNAME_TAKEN)


def one_line_break(value):
    """Browsers send a line break as CRLF: count it as one character, as the
    composer's counter does."""
    return value.replace('\r\n', '\n') if isinstance(value, str) else value


class PostForm(BaseForm):
    post = TextAreaField(
        'Say something',
        filters=[one_line_break],
        validators=[DataRequired(), Length(min=1, max=140)],
    )
    submit = SubmitField('Post')
