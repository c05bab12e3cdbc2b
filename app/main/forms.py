import sqlalchemy as sa
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from app.extensions import db
from app.forms import USERNAME_RULE
from app.models import User


class EditProfileForm(FlaskForm):
    username = StringField(
        'Username', validators=[DataRequired(), Length(max=64), USERNAME_RULE]
    )
    about_me = TextAreaField('About me', validators=[Length(max=140)])
    submit = SubmitField('Submit')

    def __init__(self, original_username: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.original_username = original_username

    def validate_username(self, username) -> None:
        if username.data != self.original_username:
            user = db.session.scalar(
                sa.select(User).where(User.username == username.data)
            )
            if user is not None:
                raise ValidationError('Please use a different username.')


class PostForm(FlaskForm):
    post = TextAreaField(
        'Say something', validators=[DataRequired(), Length(min=1, max=140)]
    )
    submit = SubmitField('Submit')
