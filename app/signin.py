"""The last step of every sign-in, after the password (and the second
factor, when the account has one): the new-browser notice, the session."""

from flask import redirect, url_for

from app import sessions
from app.models import User
from app.notices import queue_notice
from app.security import audit


def complete_sign_in(user: User, remember: bool, next_page: str | None):
    """Sign this browser in (commits) and go on to `next_page`."""
    if sessions.is_new_browser(user):
        queue_notice(user, 'new_sign_in')  # committed with the sign-in
    sessions.sign_in(user, remember=remember)
    audit('login', account=user.id)
    return redirect(next_page or url_for('main.index'))
