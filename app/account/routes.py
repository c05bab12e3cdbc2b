"""Your account: settings, password, email address, sessions, and the
emailed links that confirm or undo an email change."""

from flask import flash, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_login import current_user, login_required, logout_user

from app import budgets, devices, reauth, security_log, sessions
from app.account import bp
from app.account.email import queue_change_approval, queue_email_change
from app.account.forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    LanguageForm,
    SignOutOneForm,
    SignOutOthersForm,
)
from app.auth.email import queue_signup_confirmation
from app.email_undo import UNDO_DAYS, EmailUndo
from app.extensions import db, limiter
from app.forms import EmptyForm
from app.i18n import NAMES, ngettext, recipient_language, select_language
from app.i18n import gettext as _
from app.mfa.checks import WRONG_CODE, checked_code, end_guessing_session
from app.mfa.models import Authenticator
from app.notices import queue_notice
from app.security import audit, config_limit, mask_email, safe_next_url
from app.sessions import UserSession


@bp.route('/settings', methods=['GET', 'POST'])
@login_required
def settings():
    user = current_user._get_current_object()
    form = LanguageForm(language=str(select_language()))
    if form.validate_on_submit():
        before, user.language = recipient_language(user), form.language.data
        if user.language != before:  # the language its emails are in
            _language_changed(user, before)
        db.session.commit()
        # Flask-Babel chose this request's language already; the next page
        # shows the new one.
        return redirect(url_for('account.settings'))
    return render_template('account/settings.html', title=_('Settings'), form=form)


def _language_changed(user, before: str) -> None:
    """Logged, and told in the language it replaced (app.notices): whoever
    changed it cannot make the owner's next alarms unreadable unnoticed."""
    name = NAMES[user.language]
    log = security_log.record('language_changed', user, language=user.language)
    queue_notice(user, 'language_changed', name=name, language=before, log=log)


@bp.route('/reauthenticate', methods=['GET', 'POST'])
@login_required
@budgets.limited('LOGIN_RATE_LIMIT')
def reauthenticate():
    """Prove it's you before a sensitive change, then go back to it."""
    user = current_user._get_current_object()
    form = reauth.ReauthForm(user, has_code=Authenticator.enabled_for(user))
    back = safe_next_url(request.args.get('next')) or url_for('account.settings')
    if form.validate_on_submit() and _proof_accepted(user, form):
        reauth.mark_proven()
        db.session.commit()
        audit('reauthenticated', account=user.id)
        return redirect(back)
    return render_template(
        'account/reauthenticate.html', title=_("Prove it's you"), form=form
    )


def _proof_accepted(user, form: reauth.ReauthForm) -> bool:
    """The password (checked by the form) or a code: every wrong answer
    counts against the account's one guess budget; past it this session is
    signed out."""
    if form.current_password.data:
        return True
    kind, spent = checked_code(user, form.code.data, recovery=False)
    if spent:
        end_guessing_session()
    if kind is None:
        db.session.commit()  # a right code used late stays used
        form.code.errors.append(str(WRONG_CODE))
    return kind is not None


@bp.route('/change_password', methods=['GET', 'POST'])
@login_required
@budgets.limited('LOGIN_RATE_LIMIT')
def change_password():
    """New password; every other session is signed out, this one stays."""
    form = ChangePasswordForm(current_user)
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if not user.replace_password(user.password_hash, form.password.data):
            db.session.rollback()
            flash(_('Your password changed meanwhile: please try again.'), 'warning')
            return redirect(url_for('account.change_password'))
        sessions.revoke(user.id, UserSession.id != user.session_id)
        devices.distrust(user.id)  # this browser's trust too
        log = security_log.record('password_changed', user)
        queue_notice(user, 'password_changed', log=log)
        db.session.commit()
        flash(_('Password changed; your other sessions were signed out.'), 'success')
        return redirect(url_for('account.settings'))
    return render_template('account/form.html', title=_('Change password'), form=form)


@bp.route('/change_email', methods=['GET', 'POST'])
@login_required
@budgets.limited('LOGIN_RATE_LIMIT')
def change_email():
    """Nothing changes until the new address is confirmed from its inbox;
    while an undo is open, the undo's address must allow the change first."""
    form = ChangeEmailForm(current_user)
    gate = EmailUndo.gate(current_user.id)
    if form.validate_on_submit():
        sent = _request_change(current_user, gate, form.email.data)
        security_log.record(
            'email_change_requested', current_user.id, gated=bool(gate) or None
        )
        db.session.commit()
        flash(sent, 'info')
        return redirect(url_for('account.settings'))
    note = None
    if gate is not None:
        note = ngettext(
            'Your address changed less than %(num)d day ago. Until %(date)s, '
            'another change needs the consent of your previous address, '
            '%(address)s: the link goes there first.',
            'Your address changed less than %(num)d days ago. Until %(date)s, '
            'another change needs the consent of your previous address, '
            '%(address)s: the link goes there first.',
            UNDO_DAYS,
            date=format_date(gate.expires_at, 'long'),
            address=mask_email(gate.old_email),
        )
    return render_template(
        'account/form.html', title=_('Change email'), form=form, note=note
    )


def _request_change(user, gate: EmailUndo | None, new_email: str) -> str:
    """Queue the change's first link; say what was sent. An address whose
    undo is open for another account gets the same answer and no email."""
    reserved = EmailUndo.reserved(new_email, user)
    if gate is None:
        if not reserved:
            queue_email_change(user, new_email)
        return _(
            'We sent a link to %(address)s. Your address changes when you open it.',
            address=new_email,
        )
    if not reserved:
        queue_change_approval(user, gate, new_email)
    return _(
        'We sent a link to your previous address, %(previous)s: once it allows '
        'the change, %(address)s gets a confirmation link.',
        previous=mask_email(gate.old_email),
        address=new_email,
    )


@bp.route('/resend_confirmation', methods=['POST'])
@login_required
@limiter.limit(config_limit('CONFIRM_RATE_LIMIT'))
def resend_confirmation():
    if EmptyForm().validate_on_submit() and not current_user.email_confirmed:
        queue_signup_confirmation(current_user)
        db.session.commit()
        flash(
            _('We sent a new link to %(address)s.', address=current_user.email), 'info'
        )
    return redirect(url_for('main.index'))


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
        'account/sessions.html', title=_('Your sessions'), rows=rows, others=others
    )


def _sign_out_one(form: SignOutOneForm) -> str | None:
    if not form.validate_on_submit():
        return None
    session_id = form.session.data
    sessions.revoke(current_user.id, UserSession.id == session_id, end_trust=True)
    security_log.record('session_revoked', current_user.id, session=session_id)
    db.session.commit()
    flash(_('That session was signed out.'), 'info')
    return 'this' if session_id == current_user.session_id else 'one'


def _sign_out_others(form: SignOutOthersForm) -> str | None:
    if not form.validate_on_submit():
        return None
    count = sessions.revoke(
        current_user.id, UserSession.id != current_user.session_id, end_trust=True
    )
    security_log.record('sessions_revoked', current_user.id, count=count)
    db.session.commit()
    flash(
        ngettext(
            'Signed out %(num)d other session.',
            'Signed out %(num)d other sessions.',
            count,
        ),
        'info',
    )
    return 'others'
