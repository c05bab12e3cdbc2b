"""One guess budget per account for every check of the current password.

Every form that asks for `current_password` uses the `CurrentPassword`
validator, so all of them (and every future one) count wrong answers
against the same per-account budget (PASSWORD_GUESS_BUDGET, in the shared
rate-limit store). The wrong answer that spends the budget, and any try
after it, signs the guessing session out on the server; the owner hears
about it once per window.
"""

from flask import abort, flash, redirect, url_for
from flask_login import current_user
from wtforms.validators import ValidationError

from app import budgets, security_log, sessions
from app.i18n import lazy_gettext as _l
from app.notices import queue_notice
from app.security import audit

WRONG = _l('That is not your current password.')
SIGNED_OUT = _l(
    'Too many wrong passwords: this browser was signed out. Sign in again '
    'in a few minutes.'
)


def check_current_password(user, password: str) -> bool:
    """True for the right password; counted first, refunded when right.
    Past the budget the answer is False whatever was typed."""
    taken = budgets.take('PASSWORD_GUESS_BUDGET', str(user.id))
    if taken.ok and user.check_password(password):
        taken.refund()
        return True
    if taken.ok and not taken.spent_now:
        return False
    budget_spent(user, taken.spent_now)
    end_guessing_session(SIGNED_OUT)


def budget_spent(user, now: bool, by: str | None = None) -> None:
    """Record a spent budget: the owner hears of it once per window (when
    this try spent it, `now`); later tries only leave an audit line."""
    if now:  # committed with the caller's change or sign-out
        log = security_log.record('password_guess_budget_spent', user, by=by)
        queue_notice(user, 'password_guesses', log=log)
    else:
        audit('password_guess_budget_spent', account=user.id, by=by)


def end_guessing_session(message) -> None:
    """Sign the guessing session out on the server (commits) and send it to
    the sign-in page: not a form error, the session has ended."""
    sessions.sign_out()
    flash(str(message), 'danger')
    abort(redirect(url_for('auth.login')))


class CurrentPassword:
    """WTForms validator: the password of `form.user` (else current_user)."""

    def __call__(self, form, field) -> None:
        user = getattr(form, 'user', None) or current_user
        if not check_current_password(user, field.data or ''):
            raise ValidationError(str(WRONG))
