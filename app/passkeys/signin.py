"""Passkeys at the door: a full sign-in without a password (the button, or
the browser's autofill), the second sign-in step after a password, and a
proof on /reauthenticate. Each has an options endpoint (POST, JSON) that
starts a ceremony and an answer endpoint (a form POST from passkeys.js)."""

from flask import (
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from app import budgets, reauth
from app.auth.forms import LoginForm
from app.extensions import db, limiter
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.mfa.forms import VerifyForm
from app.mfa.models import Authenticator, PendingSignIn
from app.mfa.verify import NEXT, PENDING
from app.models import User
from app.passkeys import bp
from app.passkeys.ceremonies import (
    Refused,
    authentication_options,
    available,
    verify_assertion,
)
from app.passkeys.forms import AnswerForm
from app.passkeys.models import Passkey
from app.passkeys.routes import json_error, json_response
from app.security import audit, config_limit, safe_next_url
from app.signin import complete_sign_in

NOTHING = _l('No passkey was received. Please try again.')


def _options(purpose: str, user: User | None = None):
    if not available():
        abort(404)
    options = authentication_options(purpose, user)
    db.session.commit()
    return json_response(options)


def _answer(
    purpose: str, user: User | None = None
) -> tuple[Passkey | None, AnswerForm]:
    """The passkey that answered, or None after flashing why (the spent
    challenge committed)."""
    form = AnswerForm()
    if not available() or not form.validate_on_submit():
        flash(str(NOTHING), 'danger')
        return None, form
    try:
        return verify_assertion(purpose, form.credential.data, user), form
    except Refused as error:
        db.session.commit()
        flash(str(error), 'danger')
        return None, form


@bp.route('/login/passkey/options', methods=['POST'])
@limiter.limit(config_limit('PASSKEY_OPTIONS_LIMIT'))
def sign_in_options():
    return _options('sign_in')


@bp.route('/login/passkey', methods=['POST'])
@budgets.limited('LOGIN_RATE_LIMIT')
def sign_in():
    """A full sign-in: the passkey is something you have and, verified on
    the device, something you are or know; no second step follows."""
    if current_user.is_authenticated:
        return redirect(url_for('main.index'))
    passkey, form = _answer('sign_in')
    if passkey is None:
        return render_template('auth/login.html', title=_('Sign In'), form=LoginForm())
    user = db.session.get(User, passkey.user_id)
    audit('login_passkey', account=user.id, passkey=passkey.id)
    next_page = safe_next_url(request.args.get('next'))
    return complete_sign_in(user, form.remember.data == '1', next_page)


def _pending() -> PendingSignIn | None:
    return PendingSignIn.find(session.get(PENDING))


@bp.route('/login/verify/passkey/options', methods=['POST'])
@limiter.limit(config_limit('PASSKEY_OPTIONS_LIMIT'))
def verify_options():
    pending = _pending()
    if pending is None:
        return json_error(_('That sign-in took too long: sign in again.'), 403)
    return _options('second_step', db.session.get(User, pending.user_id))


@bp.route('/login/verify/passkey', methods=['POST'])
@budgets.limited('LOGIN_RATE_LIMIT')
def verify():
    """The second sign-in step with one of the account's passkeys."""
    pending = _pending()
    if current_user.is_authenticated or pending is None:
        return redirect(url_for('mfa.verify'))
    user = db.session.get(User, pending.user_id)
    passkey, form = _answer('second_step', user)
    if passkey is None:
        return render_template('mfa/verify.html', title=_('Enter your code'),
                               form=VerifyForm())  # fmt: skip
    PendingSignIn.clear(user.id, PendingSignIn.id == pending.id)
    next_page = safe_next_url(session.pop(NEXT, None))
    session.pop(PENDING, None)
    audit('login_second_factor', account=user.id, factor='passkey')
    return complete_sign_in(
        user, pending.remember, next_page, trust=form.trust.data == '1'
    )


@bp.route('/reauthenticate/passkey/options', methods=['POST'])
@login_required
@limiter.limit(config_limit('PASSKEY_OPTIONS_LIMIT'))
def reauth_options():
    return _options('reauth', current_user._get_current_object())


@bp.route('/reauthenticate/passkey', methods=['POST'])
@login_required
@budgets.limited('LOGIN_RATE_LIMIT')
def reauthenticate():
    """Prove it's you with one of your passkeys, then go back."""
    user = current_user._get_current_object()
    passkey, _form = _answer('reauth', user)
    if passkey is None:
        form = reauth.ReauthForm(user, has_code=Authenticator.enabled_for(user))
        return render_template(
            'account/reauthenticate.html', title=_("Prove it's you"), form=form
        )
    reauth.mark_proven()
    db.session.commit()
    audit('reauthenticated', account=user.id, factor='passkey')
    back = safe_next_url(request.args.get('next'))
    return redirect(back or url_for('account.settings'))


@bp.app_template_global()
def passkeys_offered(user: User | None = None) -> bool:
    """Offer "Use a passkey" to this account (or the one in the pending
    second step)?"""
    if not available():
        return False
    if user is None:
        pending = _pending()
        if pending is None:
            return False
        return Passkey.count_for(pending.user_id) > 0
    return Passkey.count_for(user.id) > 0


@bp.app_template_global()
def passkeys_available() -> bool:
    return available()
