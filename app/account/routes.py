"""Your account: settings, password, email address, sessions, and the
emailed links that confirm or undo an email change."""

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, logout_user

from app import links, sessions
from app.account import bp
from app.account.email import (
    queue_email_change,
    queue_email_changed_notice,
    queue_signup_confirmation,
)
from app.account.forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    ConfirmForm,
    SignOutOneForm,
    SignOutOthersForm,
)
from app.auth.email import queue_reset_email, send_password_changed_email
from app.auth.routes import login_limit
from app.database import commit_unless_conflict
from app.extensions import db, limiter
from app.forms import EmptyForm, email_taken
from app.models import User
from app.security import audit, mask_email
from app.sessions import UserSession

LINK_REFUSED = {
    'expired': 'That link has expired. Ask for a new one.',
    'used': 'That link was already used, or the account changed since it was sent.',
    'invalid': 'That link is not valid.',
}


def _failed(response) -> bool:
    return response.status_code != 302


@bp.route('/settings')
@login_required
def settings():
    return render_template('account/settings.html', title='Settings')


@bp.route('/change_password', methods=['GET', 'POST'])
@login_required
@limiter.limit(login_limit, methods=['POST'], deduct_when=_failed)
def change_password():
    """New password; every other session is signed out, this one stays."""
    form = ChangePasswordForm(current_user)
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if not user.replace_password(user.password_hash, form.password.data):
            db.session.rollback()
            flash('Your password changed meanwhile: please try again.', 'warning')
            return redirect(url_for('account.change_password'))
        sessions.revoke(user.id, UserSession.id != user.session_id)
        send_password_changed_email(user)
        db.session.commit()
        audit('password_changed', account=user.id)
        flash('Password changed; your other sessions were signed out.', 'success')
        return redirect(url_for('account.settings'))
    return render_template('account/form.html', title='Change password', form=form)


@bp.route('/change_email', methods=['GET', 'POST'])
@login_required
@limiter.limit(login_limit, methods=['POST'], deduct_when=_failed)
def change_email():
    """Nothing changes until the new address is confirmed from its inbox."""
    form = ChangeEmailForm(current_user)
    if form.validate_on_submit():
        queue_email_change(current_user, form.email.data)
        db.session.commit()
        audit('email_change_requested', account=current_user.id)
        flash(
            f'We sent a link to {form.email.data}. Your address changes when '
            'you open it.',
            'info',
        )
        return redirect(url_for('account.settings'))
    return render_template('account/form.html', title='Change email', form=form)


@bp.route('/resend_confirmation', methods=['POST'])
@login_required
@limiter.limit(lambda: current_app.config['CONFIRM_RATE_LIMIT'])
def resend_confirmation():
    if EmptyForm().validate_on_submit() and not current_user.email_confirmed:
        queue_signup_confirmation(current_user)
        db.session.commit()
        flash(f'We sent a new link to {current_user.email}.', 'info')
    return redirect(request.referrer or url_for('main.index'))


@bp.route('/sessions', methods=['GET', 'POST'])
@login_required
def sessions_page():
    """Every browser signed in to this account; sign one or all others out."""
    one, others = SignOutOneForm(), SignOutOthersForm(current_user)
    if request.method == 'POST':
        ended = _sign_out_one(one) if 'session' in request.form else None
        if ended is None and 'session' not in request.form:
            ended = _sign_out_others(others)
        if ended == 'this':
            logout_user()
            return redirect(url_for('auth.login'))
        if ended is not None:
            return redirect(url_for('account.sessions_page'))
    rows = sessions.live_sessions(current_user)
    return render_template(
        'account/sessions.html', title='Your sessions', rows=rows, others=others
    )


def _sign_out_one(form: SignOutOneForm) -> str | None:
    if not form.validate_on_submit() or not form.session.data.isdigit():
        return None
    session_id = int(form.session.data)
    sessions.revoke(current_user.id, UserSession.id == session_id)
    db.session.commit()
    audit('session_revoked', account=current_user.id, session=session_id)
    flash('That session was signed out.', 'info')
    return 'this' if session_id == current_user.session_id else 'one'


def _sign_out_others(form: SignOutOthersForm) -> str | None:
    if not form.validate_on_submit():
        return None
    count = sessions.revoke(current_user.id, UserSession.id != current_user.session_id)
    db.session.commit()
    audit('sessions_revoked', account=current_user.id, count=count)
    flash(f'Signed out {count} other session(s).', 'info')
    return 'others'


def _link_refused(endpoint: str, reason: str, purpose: str | None = None):
    links.forget(endpoint)
    audit('link_rejected', purpose=purpose or endpoint, reason=reason)
    flash(LINK_REFUSED.get(reason, LINK_REFUSED['invalid']), 'warning')
    return redirect(url_for('main.index'))


def _confirmation(token: str) -> tuple:
    """(user, reason, claims, purpose) for a sign-up or change confirmation."""
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


def _apply_confirmation(user: User, new_email: str | None):
    old_email = user.email
    if new_email:
        if email_taken(new_email, except_user=user):
            return _link_refused('account.confirm_email', 'used', 'change_email')
        user.email = new_email
        queue_email_changed_notice(user, old_email, new_email)
    user.email_confirmed = True
    if not commit_unless_conflict():
        return _link_refused('account.confirm_email', 'used', 'change_email')
    links.forget('account.confirm_email')
    audit('email_changed' if new_email else 'email_confirmed', account=user.id)
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
    if not commit_unless_conflict():
        return _link_refused('account.revert_email', 'used', 'revert_email')
    links.forget('account.revert_email')
    audit('email_reverted', account=user.id, email=mask_email(user.email))
    logout_user()
    flash(
        f'Your email address is {user.email} again and every session was '
        'signed out. We sent a password reset link there.',
        'success',
    )
    return redirect(url_for('auth.login'))
