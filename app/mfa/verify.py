"""The second sign-in step: after a right password for an account with a
second factor, nothing is signed in yet. The browser holds a random token
for a server-side pending step (PendingSignIn, 5 minutes) and answers
/login/verify with an authenticator or recovery code."""

from flask import current_app, flash, redirect, render_template, session, url_for
from flask_login import current_user

from app import budgets, security_log
from app.extensions import db
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.i18n import ngettext
from app.mfa import bp
from app.mfa.checks import TOO_MANY, WRONG_CODE, checked_code
from app.mfa.forms import VerifyForm
from app.mfa.models import PendingSignIn
from app.models import User
from app.security import audit, safe_next_url
from app.signin import complete_sign_in

PENDING = 'mfa_pending'  # the session key of this browser's pending step
NEXT = 'mfa_next'
EXPIRED = _l('That sign-in took too long: enter your username and password again.')


def start_second_step(user: User, remember: bool, next_page: str | None):
    """Open a pending step for this browser and ask for the code (commits)."""
    session[PENDING] = PendingSignIn.open(user, remember)
    session[NEXT] = next_page or ''
    db.session.commit()
    audit('login_second_step', account=user.id)
    return redirect(url_for('mfa.verify'))


def _forget() -> None:
    session.pop(PENDING, None)
    session.pop(NEXT, None)


@bp.route('/login/verify', methods=['GET', 'POST'])
@budgets.limited('LOGIN_RATE_LIMIT')
def verify():
    """Sign in's second step; wrong codes count against the account's guess
    budget and this client's sign-in limit."""
    if current_user.is_authenticated:
        return redirect(url_for('main.index'))
    pending = PendingSignIn.find(session.get(PENDING))
    if pending is None:
        _forget()
        flash(str(EXPIRED), 'warning')
        return redirect(url_for('auth.login'))
    user = db.session.get(User, pending.user_id)
    form = VerifyForm()
    days = current_app.config['TRUSTED_BROWSER_DAYS']
    form.trust.label.text = ngettext(
        'Trust this browser for %(num)d day',
        'Trust this browser for %(num)d days',
        days,
    )
    if form.validate_on_submit():
        kind, spent = checked_code(user, form.code.data)
        if kind or spent:
            PendingSignIn.clear(user.id, PendingSignIn.id == pending.id)
            next_page = safe_next_url(session.get(NEXT))
            _forget()
        if kind:
            audit('login_second_factor', account=user.id, factor=kind)
            return complete_sign_in(
                user, pending.remember, next_page, trust=form.trust.data
            )
        if spent:
            db.session.commit()
            flash(str(TOO_MANY), 'danger')
            return redirect(url_for('auth.login'))
        security_log.record('login_code_failed', user)
        db.session.commit()  # a code seen is used, right or wrong
        form.code.errors.append(str(WRONG_CODE))
    return render_template(
        'mfa/verify.html', title=_('Enter your code'), form=form, days=days
    )
