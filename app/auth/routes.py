import functools

import sqlalchemy as sa
from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, user_logged_in, user_logged_out
from werkzeug.security import check_password_hash, generate_password_hash

from app import (
    budgets,
    deletion,
    devices,
    links,
    security_log,
    sessions,
    signups,
    tokens,
)
from app.auth import bp
from app.auth.email import queue_pending_signup, request_password_reset
from app.auth.forms import (
    USERNAME_TAKEN,
    LoginForm,
    RegistrationForm,
    ResetPasswordForm,
    ResetPasswordRequestForm,
)
from app.extensions import db, limiter
from app.forms import EmptyForm
from app.i18n import browser_language
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.identity import canonical_username, hash_password
from app.mfa.models import second_factor_on
from app.mfa.verify import start_second_step
from app.models import User
from app.notices import queue_notice
from app.security import audit, config_limit, mask_email, safe_next_url
from app.signin import complete_sign_in
from app.signups import PendingSignup

# The reset link's token is moved into the session, then the browser is sent
# here, so the token never sits in the address bar, history or Referer.
SET_PASSWORD = 'set-password'
RESET_SENT = _l('Check your email for the instructions to reset your password')
RESET_AGAIN = 'reset_again'  # account id of an expired or used link
SIGNUP_SENT = _l('Check your email to finish signing up.')
PENDING = signups.SESSION_KEY


@functools.cache
def _dummy_hash(method: str) -> str:
    """Made with the method real accounts use, so checking it costs the same."""
    return generate_password_hash('not-a-real-password', method=method)


@user_logged_in.connect
@user_logged_out.connect
def _forget_opened_links(_app, **_extra) -> None:
    """An opened link does not outlive a change of who is signed in."""
    links.forget()
    session.pop(RESET_AGAIN, None)
    session.pop(PENDING, None)
    # Whose restore link "send it again" sends: not the next person's.
    session.pop(deletion.SESSION_KEY, None)


@bp.route('/login', methods=['GET', 'POST'])
@budgets.limited('LOGIN_RATE_LIMIT')
def login():
    """Sign in; failed attempts count towards the per-client and the
    per-account limits (counted first, refunded on success)."""
    if current_user.is_authenticated:
        return redirect(url_for('main.index'))
    form = LoginForm()
    if form.validate_on_submit():
        # Keyed on the typed name, known or not: the answer is the same.
        account_try = budgets.take(
            'LOGIN_ACCOUNT_LIMIT', canonical_username(form.username.data)
        )
        if not account_try.ok:
            abort(429)
        user = User.by_username(form.username.data)
        if user is None:
            answer = _pending_sign_in(form.username.data, form.password.data)
            if answer is not None:
                account_try.refund()
                return answer
        elif user.check_password(form.password.data):
            account_try.refund()
            next_page = safe_next_url(request.args.get('next'))
            remember = form.remember_me.data
            # Nothing is signed in yet, unless this browser is trusted.
            if second_factor_on(user) and not devices.trusted(user):
                return start_second_step(user, remember, next_page)
            return complete_sign_in(user, remember, next_page)
        _failed_sign_in(user, account_try.spent_now)
        flash(_('Invalid username or password'), 'danger')
    return render_template('auth/login.html', title=_('Sign In'), form=form)


def _failed_sign_in(user: User | None, limit_reached: bool) -> None:
    """Into the account's security log (the last try before the pause too)."""
    if user is None:
        audit('login_failed')
        return
    security_log.record('login_failed', user)
    if limit_reached:
        security_log.record('login_limit_reached', user)
    db.session.commit()


def _pending_sign_in(username: str, password: str):
    """A sign-up's username and password before its address is confirmed:
    "confirm first", the same for a free and a taken address. None if they
    match no pending sign-up (after the same hashing work)."""
    pending = PendingSignup.by_username(username)
    if pending is None:  # the same hashing work as for an account: no oracle
        method = current_app.config['PASSWORD_HASH_METHOD']
        check_password_hash(_dummy_hash(method), password)
        return None
    if not pending.check_password(password):
        return None
    session[PENDING] = pending.id
    audit('login_pending_signup', pending=pending.id)
    return redirect(url_for('auth.signup_pending'))


@bp.route('/logout', methods=['POST'])
def logout():
    """Sign out this browser, on the server too."""
    if EmptyForm().validate_on_submit():
        sessions.sign_out()
        flash(_('You have been signed out.'), 'info')
    return redirect(url_for('auth.login'))


@bp.route('/register', methods=['GET', 'POST'])
@limiter.limit(config_limit('REGISTER_RATE_LIMIT'), methods=['POST'])
def register():
    """Sign up; the answer never says whether the email address has an account."""
    if current_user.is_authenticated:
        return redirect(url_for('main.index'))
    form = RegistrationForm()
    if form.validate_on_submit():
        # One path for a free and a taken address: a pending sign-up and one
        # queued email; the sender chooses what the address gets.
        password_hash = hash_password(form.password.data)
        pending = _start_signup(form.username.data, form.email.data, password_hash)
        if pending is None:
            form.username.errors.append(str(USERNAME_TAKEN))
            return render_template('auth/register.html', title=_('Register'), form=form)
        flash(str(SIGNUP_SENT), 'info')
        return redirect(url_for('auth.login'))
    return render_template('auth/register.html', title=_('Register'), form=form)


def _start_signup(username: str, email: str, password_hash: str):
    """The pending sign-up and its email, committed; None if a concurrent
    sign-up took the name first."""
    lifetime = current_app.config['CONFIRM_TOKEN_EXPIRES']
    try:
        pending = PendingSignup.start(
            username, email, password_hash, lifetime, language=browser_language()
        )
    except sa.exc.IntegrityError:
        db.session.rollback()
        return None
    if pending is None:
        return None
    queue_pending_signup(pending)  # needs the id: inserted by the flush
    db.session.commit()
    audit('signup_started', pending=pending.id, email=mask_email(email))
    return pending


@bp.route('/signup/pending', methods=['GET', 'POST'])
@limiter.limit(config_limit('CONFIRM_RATE_LIMIT'), methods=['POST'])
def signup_pending():
    """Signed in with a sign-up not yet confirmed: where the link went, and
    a button to send it again (the same for a free and a taken address)."""
    pending = PendingSignup.get_live(session.get(PENDING))
    if pending is None:
        session.pop(PENDING, None)
        return redirect(url_for('auth.login'))
    form = EmptyForm()
    if form.validate_on_submit():
        pending.extend(current_app.config['CONFIRM_TOKEN_EXPIRES'])
        queue_pending_signup(pending)
        db.session.commit()
        audit('signup_resent', pending=pending.id)
        flash(_('We sent a new link to %(email)s.', email=pending.email), 'info')
        return redirect(url_for('auth.signup_pending'))
    title = _('Confirm your address first')
    return render_template(
        'auth/signup_pending.html', title=title, email=pending.email, form=form
    )


@bp.route('/reset_password_request', methods=['GET', 'POST'])
@limiter.limit(config_limit('RESET_RATE_LIMIT'), methods=['POST'])
def reset_password_request():
    """Queue a reset; the answer is the same whether the address is known."""
    if current_user.is_authenticated:
        return redirect(url_for('main.index'))
    form = ResetPasswordRequestForm()
    if form.validate_on_submit():
        job = request_password_reset(form.email.data)
        db.session.commit()
        audit('reset_requested', email=mask_email(form.email.data), job=job)
        flash(str(RESET_SENT), 'info')
        return redirect(url_for('auth.reset_password_sent'))
    return render_template(
        'auth/reset_password_request.html', title=_('Reset Password'), form=form
    )


@links.route(bp, '/reset_password/', landing=SET_PASSWORD)
def reset_password(token):
    if current_user.is_authenticated:
        return redirect(url_for('main.index'))
    if token != SET_PASSWORD:
        return links.land('auth.reset_password', token)
    token = links.stashed('auth.reset_password')
    user, reason = User.check_reset_password_token(token)
    if user is None:
        return _reset_refused(reason, token)
    form = ResetPasswordForm(user)
    if form.validate_on_submit():
        # Compare-and-set on the hash the link was issued for: of two
        # simultaneous posts with one link, exactly one changes the password.
        if not user.replace_password(user.password_hash, form.password.data):
            db.session.rollback()
            return _reset_refused('used', token)
        user.email_confirmed = True  # the link proved the address
        sessions.revoke_all(user)
        log = security_log.record('reset_completed', user)
        queue_notice(user, 'password_changed', log=log)
        db.session.commit()
        links.forget('auth.reset_password')
        flash(_('Your password has been reset.'), 'success')
        return redirect(url_for('auth.login'))
    if request.method == 'GET':
        audit('reset_link_used', account=user.id)
    return render_template(
        'auth/reset_password.html', title=_('Reset Password'), form=form
    )


def _reset_refused(reason: str, token: str):
    """Say plainly why the link does not work, on a page of its own."""
    links.forget('auth.reset_password')
    audit('reset_token_rejected', reason=reason)
    account = tokens.subject(token, 'reset_password')
    if reason in ('expired', 'used') and account is not None:
        session[RESET_AGAIN] = account  # for "send me a new link"
    return redirect(url_for('auth.reset_link_problem', reason=reason))


@bp.route('/reset_password_problem/<any(expired, used, invalid):reason>',
          methods=['GET', 'POST'])  # fmt: skip
@limiter.limit(config_limit('RESET_RATE_LIMIT'), methods=['POST'])
def reset_link_problem(reason):
    """Expired, used or not valid: each explained; the first two offer a new
    link to the same account without showing or asking its address."""
    account = session.get(RESET_AGAIN) if reason != 'invalid' else None
    form = EmptyForm()
    if account is not None and form.validate_on_submit():
        session.pop(RESET_AGAIN, None)
        user = db.session.get(User, account)
        if user is not None:
            job = request_password_reset(user.email)
            db.session.commit()
            audit('reset_requested_again', account=user.id, job=job)
        flash(str(RESET_SENT), 'info')
        return redirect(url_for('auth.reset_password_sent'))
    return render_template(
        'auth/reset_link_problem.html',
        title=_('This reset link does not work'),
        reason=reason,
        can_resend=account is not None,
        form=form,
    )


@bp.route('/reset_password_request/sent')
def reset_password_sent():
    """Where people land after asking: what to look for, and what if not."""
    return render_template('auth/reset_password_sent.html', title=_('Check your email'))
