import sqlalchemy as sa
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from app.extensions import db
from app.forms import MAX_PASSWORD, USERNAME_RULE, NormalizedEmail, PasswordPolicy
from app.models import User


def password_fields(label: str = 'Password'):
    password = PasswordField(
        label,
        validators=[DataRequired(), PasswordPolicy()],
        render_kw={'autocomplete': 'new-password', 'maxlength': MAX_PASSWORD},
    )
    password2 = PasswordField(
        'Repeat Password',
        validators=[DataRequired(), EqualTo('password', 'Passwords must match.')],
        render_kw={'autocomplete': 'new-password', 'maxlength': MAX_PASSWORD},
    )
    return password, password2


class LoginForm(FlaskForm):
    username = StringField(
        'Username',
        validators=[DataRequired(), Length(max=64)],
        render_kw={'autocomplete': 'username'},
    )
    password = PasswordField(
        'Password',
        validators=[DataRequired(), Length(max=MAX_PASSWORD)],
        render_kw={'autocomplete': 'current-password'},
    )
    remember_me = BooleanField('Remember Me')
    submit = SubmitField('Sign In')


class RegistrationForm(FlaskForm):
    username = StringField(
        'Username',
        validators=[DataRequired(), Length(max=64), USERNAME_RULE],
        render_kw={'autocomplete': 'username'},
    )
    email = EmailField(
        'Email',
        validators=[DataRequired(), Length(max=254), NormalizedEmail()],
        render_kw={'autocomplete': 'email'},
    )
    password, password2 = password_fields()
    submit = SubmitField('Register')

    def validate_username(self, username) -> None:
        user = db.session.scalar(sa.select(User).where(User.username == username.data))
        if user is not None:
            raise ValidationError('Please use a different username.')

    def validate_email(self, email) -> None:
        # Runs after NormalizedEmail, on the canonical form.
        user = db.session.scalar(sa.select(User).where(User.email == email.data))
        if user is not None:
            raise ValidationError('Please use a different email address.')


class ResetPasswordRequestForm(FlaskForm):
    email = EmailField(
        'Email',
        validators=[DataRequired(), Length(max=254), NormalizedEmail()],
        render_kw={'autocomplete': 'email'},
    )
    submit = SubmitField('Request Password Reset')


class ResetPasswordForm(FlaskForm):
    password, password2 = password_fields('New Password')
    submit = SubmitField('Reset Password')
