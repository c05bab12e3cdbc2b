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

from app.dbtypes import utcnow
from app.extensions import db, login
from app.sessions import UserSession


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
