"""The emailed links that change an account: confirm an address, undo an
email change, and "this wasn't me". Each lands on a token-free page whose
button (a POST with CSRF) does the change (see app.links)."""

from flask import flash, redirect, render_template, session, url_for
from flask_login import logout_user

from app import links, security_log, sessions, signups, tokens
from app.account import bp
from app.account.email import queue_email_changed_notice
from app.account.forms import ConfirmForm
from app.auth.email import queue_reset_email, request_password_reset
from app.database import commit_unless_conflict
from app.extensions import db
from app.models import User
from app.notices import request_context
from app.security import audit, mask_email
from app.signups import PendingSignup
from app.validators import email_taken

LINK_REFUSED = {
    'expired': 'That link has expired. Ask for a new one.',
    'used': 'That link was already used, or the account changed since it was sent.',
    'invalid': 'That link is not valid.',
}


def _link_refused(endpoint: str, reason: str, purpose: str | None = None):
    links.forget(endpoint)
    audit('link_rejected', purpose=purpose or endpoint, reason=reason)
    flash(LINK_REFUSED.get(reason, LINK_REFUSED['invalid']), 'warning')
    return redirect(url_for('main.index'))


def _confirmation(token: str) -> tuple:
    """(user or pending sign-up, reason, claims, purpose) for a sign-up or
    change confirmation."""
    pending, reason, claims = PendingSignup.from_token(token)
    if reason == 'invalid' and tokens.subject(token, signups.PURPOSE) is not None:
        reason = 'used'  # genuine, but its sign-up is gone: confirmed or expired
    if reason != 'invalid':
        return pending, reason, claims, signups.PURPOSE
    for purpose in ('confirm_email', 'change_email'):
        user, reason, claims = User.from_token(token, purpose)
        if reason != 'invalid':
            return user, reason, claims, purpose
    return None, 'invalid', {}, None


@bp.route('/confirm_email/<token>', methods=['GET', 'POST'])
def confirm_email(token):
    if token != links.LANDING:
        return links.land('account.confirm_email', token)
    token = links.stashed('account.confirm_email')
    user, reason, claims, purpose = _confirmation(token)
    if user is None:
        return _link_refused('account.confirm_email', reason, purpose)
    new_email = claims.get('email') if purpose == 'change_email' else None
    form = ConfirmForm()
    if form.validate_on_submit():
        return _apply_confirmation(user, new_email)
    return render_template(
        'account/confirm.html',
        title='Confirm your email address',
        form=form,
        address=new_email or user.email,
        change=new_email is not None,
    )


def _create_account(pending: PendingSignup):
    """The sign-up's account, made now that its address is proven."""
    if email_taken(pending.email):  # another sign-up was confirmed first
        return _link_refused('account.confirm_email', 'used', signups.PURPOSE)
    user = pending.create_account()
    if not commit_unless_conflict():  # name or address taken meanwhile
        return _link_refused('account.confirm_email', 'used', signups.PURPOSE)
    links.forget('account.confirm_email')
    session.pop(signups.SESSION_KEY, None)
    audit('signup', account=user.id)
    flash(
        'Thank you: your email address is confirmed and your account is ready. '
        'Sign in to start.',
        'success',
    )
    return redirect(url_for('auth.login'))


def _apply_confirmation(user: User, new_email: str | None):
    if isinstance(user, PendingSignup):
        return _create_account(user)
    old_email = user.email
    if new_email:
        if email_taken(new_email, except_user=user):
            return _link_refused('account.confirm_email', 'used', 'change_email')
        user.email = new_email
        log = security_log.record('email_changed', user.id)
        context = {**request_context(), 'log': log}
        queue_email_changed_notice(user, old_email, new_email, context)
    user.email_confirmed = True
    if not commit_unless_conflict():
        return _link_refused('account.confirm_email', 'used', 'change_email')
    links.forget('account.confirm_email')
    if not new_email:
        audit('email_confirmed', account=user.id)
    flash(
        f'Your email address is now {new_email}.'
        if new_email
        else 'Thank you: your email address is confirmed.',
        'success',
    )
    return redirect(url_for('main.index'))


@bp.route('/revert_email/<token>', methods=['GET', 'POST'])
def revert_email(token):
    """Undo an email change from the old address: restore it, sign out every
    session and send a password reset there."""
    if token != links.LANDING:
        return links.land('account.revert_email', token)
    user, reason, claims = User.from_token(
        links.stashed('account.revert_email'), 'revert_email'
    )
    if user is None or user.email != claims.get('new'):
        return _link_refused('account.revert_email', reason, 'revert_email')
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template(
            'account/revert.html', title='Undo the email change', form=form,
            old=claims['old'], new=claims['new'],
        )  # fmt: skip
    user.email, user.email_confirmed = claims['old'], True
    sessions.revoke_all(user)
    queue_reset_email(user)
    security_log.record('email_reverted', user.id, email=mask_email(user.email))
    if not commit_unless_conflict():
        return _link_refused('account.revert_email', 'used', 'revert_email')
    links.forget('account.revert_email')
    logout_user()
    flash(
        f'Your email address is {user.email} again and every session was '
        'signed out. We sent a password reset link there.',
        'success',
    )
    return redirect(url_for('auth.login'))


@bp.route('/not_me/<token>', methods=['GET', 'POST'])
def not_me(token):
    """From a security notice: sign out every session and send a password
    reset to the stored address, after one confirming click."""
    if token != links.LANDING:
        return links.land('account.not_me', token)
    user, reason, _ = User.from_token(links.stashed('account.not_me'), 'not_me')
    if user is None:
        return _link_refused('account.not_me', reason, 'not_me')
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template(
            'account/not_me.html', title='Secure your account', form=form
        )
    count = sessions.revoke_all(user)
    request_password_reset(user.email)  # throttled per account like any reset
    security_log.record('not_me', user.id, sessions=count)
    db.session.commit()
    links.forget('account.not_me')
    logout_user()
    flash(
        'Every session of your account was signed out and a password reset '
        'link is on its way to your email address.',
        'success',
    )
    return redirect(url_for('auth.login'))
