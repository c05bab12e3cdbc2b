"""Your data: the security log, the download of everything, and deleting
the account (with its way back)."""

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import format_date
from flask_login import current_user, login_required, logout_user

from app import deletion, links, reauth, security_log
from app import export as data_export
from app.account import bp
from app.account.forms import ConfirmForm, DeleteAccountForm
from app.account.link_routes import LINK_REFUSED
from app.extensions import db, limiter
from app.forms import EmptyForm
from app.i18n import gettext as _
from app.models import User
from app.security import audit, config_limit
from app.timeline import Page

EVENTS_PER_PAGE = 25


@bp.route('/security_log')
@login_required
def security_log_page():
    """The account's security events for SECURITY_LOG_DAYS, newest first."""
    # Bounded, as on the list pages: no OFFSET past what a database takes.
    number = min(max(1, request.args.get('page', 1, type=int)), 100_000)
    query = security_log.events_of(current_user)
    rows = db.session.scalars(
        query.limit(EVENTS_PER_PAGE + 1).offset((number - 1) * EVENTS_PER_PAGE)
    ).all()
    page = Page(
        rows[:EVENTS_PER_PAGE], number, EVENTS_PER_PAGE, len(rows) > EVENTS_PER_PAGE
    )
    return render_template(
        'account/security_log.html', title=_('Security log'), events=page
    )


@bp.route('/security_log/<id:event_id>')
@login_required
def security_event(event_id):
    """One event, as a notice email links to it; 404 for another's."""
    event = security_log.one_of(current_user, event_id)
    if event is None:
        abort(404)
    return render_template(
        'account/security_event.html', title=event.label, event=event
    )


@bp.route('/export', methods=['GET', 'POST'])
@login_required
@reauth.fresh_proof_required
def export():
    """What the download holds; a POST streams the ZIP (after a recent
    proof of identity), recorded in the security log first."""
    if not EmptyForm().validate_on_submit():
        return render_template('account/export.html', title=_('Download your data'))
    user = current_user._get_current_object()
    security_log.record('export', user)
    db.session.commit()
    response = Response(
        stream_with_context(data_export.archive(user)), mimetype='application/zip'
    )
    response.headers['Content-Disposition'] = data_export.content_disposition(user)
    response.headers['Cache-Control'] = 'no-store'
    return response


@bp.route('/delete_account', methods=['GET', 'POST'])
@login_required
@reauth.fresh_proof_required
def delete_account():
    """What deleting does; the typed username (after a recent proof)
    deletes at once, restorable from an emailed link for the grace period."""
    user = current_user._get_current_object()
    form = DeleteAccountForm(user)
    if form.validate_on_submit():
        deletion.schedule(user)  # False: deleted meanwhile, from elsewhere
        db.session.commit()
        logout_user()
        until = format_date(deletion.restorable_until(user), 'long')
        flash(
            _(
                'Your account is deleted. Until %(date)s you can restore it with '
                'the link we sent to %(address)s.',
                date=until,
                address=user.email,
            ),
            'info',
        )
        return redirect(url_for('auth.login'))
    return render_template(
        'account/delete_account.html',
        title=_('Delete your account'),
        form=form,
        days=current_app.config['ACCOUNT_DELETION_GRACE'],
    )


@bp.route('/deletion_scheduled', methods=['GET', 'POST'])
@limiter.limit(config_limit('CONFIRM_RATE_LIMIT'), methods=['POST'])
def deletion_scheduled():
    """After the right password for a deleted account: when it goes for good
    and how to restore it; a button sends the restore link again."""
    user = db.session.get(User, session.get(deletion.SESSION_KEY) or 0)
    if user is None or user.deleted_at is None:
        session.pop(deletion.SESSION_KEY, None)
        return redirect(url_for('auth.login'))
    form = EmptyForm()
    if form.validate_on_submit():
        deletion.queue_restore_link(user)
        db.session.commit()
        flash(
            _('We sent a new restore link to %(address)s.', address=user.email), 'info'
        )
        return redirect(url_for('account.deletion_scheduled'))
    return render_template(
        'account/deletion_scheduled.html',
        title=_('Your account is scheduled for deletion'),
        email=user.email,
        until=deletion.restorable_until(user),
        form=form,
    )


@links.route(bp, '/restore_account/')
def restore_account(token):
    """From the emailed link: one click brings the account back."""
    if token != links.LANDING:
        return links.land('account.restore_account', token)
    stashed = links.stashed('account.restore_account')
    user, reason, _claims = User.from_token(stashed, deletion.PURPOSE)
    if user is not None and not deletion.restorable(user):
        user, reason = None, 'expired'  # the grace period is over
    if user is None:
        return _restore_refused(reason)
    form = ConfirmForm()
    if form.validate_on_submit():
        if not deletion.restore(user):  # the same link, pressed twice at once
            db.session.rollback()
            return _restore_refused('used')
        db.session.commit()
        links.forget('account.restore_account')
        session.pop(deletion.SESSION_KEY, None)
        flash(
            _('Welcome back: your account is restored. Sign in to continue.'),
            'success',
        )
        return redirect(url_for('auth.login'))
    return render_template(
        'account/restore_account.html', title=_('Restore your account'), form=form
    )


def _restore_refused(reason: str):
    links.forget('account.restore_account')
    audit('link_rejected', purpose=deletion.PURPOSE, reason=reason)
    flash(str(LINK_REFUSED.get(reason, LINK_REFUSED['invalid'])), 'warning')
    return redirect(url_for('auth.login'))
