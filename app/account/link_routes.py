"""The emailed links that change an account: confirm an address, consent
to a change, undo an email change or keep it ("This was me"), and "this
wasn't me". Each lands on a token-free page whose button (a POST with
CSRF) does the change (see app.links)."""

from flask import flash, redirect, render_template, session, url_for
from flask_login import current_user

from app import links, security_log, sessions, signups, tokens
from app.account import bp
from app.account.email import (
    queue_email_change,
    queue_email_changed_notice,
    queue_email_restored_notice,
)
from app.account.forms import ConfirmForm
from app.auth.email import queue_reset_email, request_password_reset
from app.database import commit_unless_conflict
from app.email_undo import EmailUndo
from app.extensions import db
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.models import User
from app.notices import request_context
from app.passkeys.models import Passkey
from app.security import audit, mask_email
from app.sessions import UserSession
from app.signups import PendingSignup
from app.validators import email_taken

LINK_REFUSED = {
    'expired': _l('That link has expired. Ask for a new one.'),
    'used': _l('That link was already used, or the account changed since it was sent.'),
    'invalid': _l('That link is not valid.'),
    'taken': _l('That address cannot be put back: another account uses it now.'),
}


def _link_refused(endpoint: str, reason: str, purpose: str | None = None):
    db.session.rollback()
    links.forget(endpoint)
    audit('link_rejected', purpose=purpose or endpoint, reason=reason)
    flash(str(LINK_REFUSED.get(reason, LINK_REFUSED['invalid'])), 'warning')
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


@links.route(bp, '/confirm_email/')
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
        if isinstance(user, PendingSignup):
            return _create_account(user)
        if new_email:
            return _apply_change(user, new_email, claims.get('approved') is True)
        user.email_confirmed = True
        return _confirmed(
            user, 'email_confirmed', _('Thank you: your email address is confirmed.')
        )
    return render_template(
        'account/confirm.html',
        title=_('Confirm your email address'),
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
        _(
            'Thank you: your email address is confirmed and your account is '
            'ready. Sign in to start.'
        ),
        'success',
    )
    return redirect(url_for('auth.login'))


def _apply_change(user: User, new_email: str, approved: bool):
    """The new address proved itself: switch to it, sign out the account's
    other sessions and, if the old address was proved too, open its undo and
    tell it (an unproved one may be a stranger's: it gets no power, no mail)."""
    # While an undo is open, only a change its address allowed goes through.
    if not approved and EmailUndo.gate(user.id) is not None:
        return _link_refused('account.confirm_email', 'used', 'change_email')
    old, proved = user.email, user.email_confirmed
    if email_taken(new_email, except_user=user) or not user.replace_email(
        old, new_email
    ):
        return _link_refused('account.confirm_email', 'used', 'change_email')
    log = security_log.record('email_changed', user.id)
    if proved:
        undo = EmailUndo.start(user, old, new_email)
        queue_email_changed_notice(user, undo, {**request_context(), 'log': log})
    here = current_user.is_authenticated and current_user.id == user.id
    keep = [UserSession.id != current_user.session_id] if here else []
    sessions.revoke(user.id, *keep)
    message = _('Your email address is now %(address)s.', address=new_email)
    return _confirmed(user, None, message)


def _confirmed(user: User, event: str | None, message: str):
    """Commit a confirmation; `event`: the audit line, unless the security
    log recorded the change already."""
    if not commit_unless_conflict():
        return _link_refused('account.confirm_email', 'used')
    links.forget('account.confirm_email')
    if event:
        audit(event, account=user.id)
    flash(message, 'success')
    # Signed out, the sign-in page comes next (not the timeline, which would
    # add "Please log in" under the success message).
    if not current_user.is_authenticated:
        return redirect(url_for('auth.login'))
    return redirect(url_for('main.index'))


@links.route(bp, '/approve_email/')
def approve_email(token):
    """From the address of an open undo: allow the change it was asked for;
    the new address then gets its own confirmation link."""
    if token != links.LANDING:
        return links.land('account.approve_email', token)
    user, reason, claims = User.from_token(
        links.stashed('account.approve_email'), 'approve_email'
    )
    new_email = claims.get('email')
    if user is None or not isinstance(new_email, str):
        return _link_refused('account.approve_email', reason, 'approve_email')
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template(
            'account/approve.html', title=_('Allow the change'), form=form,
            new=new_email,
        )  # fmt: skip
    if email_taken(new_email, except_user=user):
        return _link_refused('account.approve_email', 'used', 'approve_email')
    queue_email_change(user, new_email, approved=True)
    db.session.commit()
    links.forget('account.approve_email')
    audit('email_change_approved', account=user.id)
    flash(_('We sent a confirmation link to %(address)s.', address=new_email), 'info')
    return redirect(url_for('main.index'))


def _open_undo(endpoint: str, purpose: str) -> tuple:
    """(user, undo row or None, reason) for an undo or "This was me" link."""
    user, reason, claims = User.from_token(links.stashed(endpoint), purpose)
    if user is None:
        return None, None, reason
    undo = EmailUndo.open_for(user.id, claims.get('undo'))
    return user, undo, 'ok' if undo else 'used'


@links.route(bp, '/revert_email/')
def revert_email(token):
    """Undo an email change from the old address: restore it, sign out every
    session, send a password reset there and tell the replaced address."""
    if token != links.LANDING:
        return links.land('account.revert_email', token)
    user, undo, reason = _open_undo('account.revert_email', 'revert_email')
    if undo is None:
        return _link_refused('account.revert_email', reason, 'revert_email')
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template(
            'account/revert.html', title=_('Undo the email change'), form=form,
            old=undo.old_email, new=user.email,
        )  # fmt: skip
    replaced = user.email
    if not undo.end('undone'):
        return _link_refused('account.revert_email', 'used', 'revert_email')
    if replaced != undo.old_email and not user.replace_email(replaced, undo.old_email):
        taken = User.by_email(undo.old_email) is not None
        return _link_refused('account.revert_email', 'taken' if taken else 'used')
    user.email_confirmed = True
    sessions.revoke_all(user)
    queue_reset_email(user)
    if replaced != user.email:
        queue_email_restored_notice(user, replaced, request_context())
    security_log.record('email_reverted', user.id, email=mask_email(user.email))
    db.session.commit()
    links.forget('account.revert_email')
    sessions.sign_out()  # this browser too, on the server, whoever it was
    flash(
        _(
            'Your email address is %(address)s again and every session was '
            'signed out. We sent a password reset link there.',
            address=user.email,
        ),
        'success',
    )
    return redirect(url_for('auth.login'))


@links.route(bp, '/keep_email/')
def keep_email(token):
    """ "This was me", from the old address: end the undo, keep the change."""
    if token != links.LANDING:
        return links.land('account.keep_email', token)
    user, undo, reason = _open_undo('account.keep_email', 'keep_email')
    if undo is None:
        return _link_refused('account.keep_email', reason, 'keep_email')
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template(
            'account/keep.html', title=_('Keep the new address'), form=form,
            old=undo.old_email, new=undo.new_email,
        )  # fmt: skip
    if not undo.end('kept'):
        return _link_refused('account.keep_email', 'used', 'keep_email')
    db.session.commit()
    links.forget('account.keep_email')
    audit('email_change_kept', account=user.id)
    flash(
        _(
            'The account keeps %(address)s; the undo link no longer works.',
            address=undo.new_email,
        ),
        'success',
    )
    return redirect(url_for('main.index'))


@links.route(bp, '/not_me/')
def not_me(token):
    """From a security notice: sign out every session and send a password
    reset to the stored address, after one confirming click."""
    if token != links.LANDING:
        return links.land('account.not_me', token)
    user, reason, _claims = User.from_token(links.stashed('account.not_me'), 'not_me')
    if user is None:
        return _link_refused('account.not_me', reason, 'not_me')
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template(
            'account/not_me.html', title=_('Secure your account'), form=form
        )
    count = sessions.revoke_all(user)
    # A passkey signs in without the password: one someone else added
    # would outlive the reset.
    passkeys = Passkey.remove_all(user)
    request_password_reset(user.email)  # throttled per account like any reset
    security_log.record('not_me', user.id, sessions=count, passkeys=passkeys)
    db.session.commit()
    links.forget('account.not_me')
    sessions.sign_out()  # this browser too, on the server, whoever it was
    flash(
        _(
            'Every session of your account was signed out, its passkeys removed, '
            'and a password reset link is on its way to your email address.'
        ),
        'success',
    )
    return redirect(url_for('auth.login'))
