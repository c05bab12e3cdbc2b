"""Re-authentication ("sudo mode"): a sensitive change needs a proof of
identity made in this session within REAUTH_WINDOW seconds.

A proof is the sign-in itself, the current password or an authenticator
code (on /reauthenticate, or in a form that asks for the password). The
time is kept on the server, on the session's `user_session` row, so a
cookie cannot claim it and signing the session out ends it.
"""

from datetime import timedelta
from functools import wraps

import sqlalchemy as sa
from flask import current_app, redirect, request, url_for
from flask_login import current_user
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import Length, Optional

from app.dbtypes import utcnow
from app.extensions import db, login
from app.forms import BaseForm
from app.guesses import CurrentPassword
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.models import User
from app.sessions import UserSession
from app.validators import MAX_PASSWORD, strip


def recently_proven() -> bool:
    """Did this session prove who it is within REAUTH_WINDOW seconds?"""
    if not current_user.is_authenticated:
        return False
    proven = getattr(current_user, 'session_proven_at', None)
    window = timedelta(seconds=current_app.config['REAUTH_WINDOW'])
    return proven is not None and utcnow() - proven < window


def mark_proven() -> None:
    """Record a proof for this session now (no commit)."""
    now = utcnow()
    db.session.execute(
        sa.update(UserSession)
        .where(UserSession.id == current_user.session_id)
        .values(proven_at=now)
        .execution_options(synchronize_session=False)
    )
    current_user.session_proven_at = now


def proof_url() -> str:
    """/reauthenticate, coming back to this page (as a GET) afterwards."""
    here = request.full_path if request.query_string else request.path
    return url_for('account.reauthenticate', next=here)


def fresh_proof_required(view):
    """The view needs a signed-in session proven within the window; others
    are sent to /reauthenticate first (a POST comes back as a GET)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return login.unauthorized()
        if not recently_proven():
            return redirect(proof_url())
        return view(*args, **kwargs)

    return wrapper


class ReauthForm(BaseForm):
    """Prove it's you: the password, or a code from the authenticator app."""

    # Optional: checked (against the guess budget) only when typed.
    current_password = PasswordField(
        _l('Password'),
        validators=[Optional(), Length(max=MAX_PASSWORD), CurrentPassword()],
        render_kw={'autocomplete': 'current-password'},
    )
    code = StringField(
        _l('Or a code from your authenticator app'),
        filters=[strip],
        validators=[Optional(), Length(max=32)],
        render_kw={'autocomplete': 'one-time-code', 'inputmode': 'numeric'},
    )
    submit = SubmitField(_l('Continue'))

    def __init__(self, user: User, has_code: bool, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if not has_code:
            del self['code']

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if self.current_password.data or ('code' in self and self.code.data):
            return True
        self.current_password.errors.append(
            _('Enter your password or a code.')
            if 'code' in self
            else _('Enter your password.')
        )
        return False
