"""Your data: the security log, the download of everything, and deleting
the account (with its way back)."""

from flask import Response, abort, render_template, request, stream_with_context
from flask_login import current_user, login_required

from app import export as data_export
from app import reauth, security_log
from app.account import bp
from app.extensions import db
from app.forms import EmptyForm
from app.timeline import Page

EVENTS_PER_PAGE = 25


@bp.route('/security_log')
@login_required
def security_log_page():
    """The account's security events for SECURITY_LOG_DAYS, newest first."""
    number = max(1, request.args.get('page', 1, type=int) or 1)
    query = security_log.events_of(current_user)
    rows = db.session.scalars(
        query.limit(EVENTS_PER_PAGE + 1).offset((number - 1) * EVENTS_PER_PAGE)
    ).all()
    page = Page(
        rows[:EVENTS_PER_PAGE], number, EVENTS_PER_PAGE, len(rows) > EVENTS_PER_PAGE
    )
    return render_template(
        'account/security_log.html', title='Security log', events=page
    )


@bp.route('/security_log/<int:event_id>')
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
        return render_template('account/export.html', title='Download your data')
    user = current_user._get_current_object()
    security_log.record('export', user)
    db.session.commit()
    response = Response(
        stream_with_context(data_export.archive(user)), mimetype='application/zip'
    )
    response.headers['Content-Disposition'] = data_export.content_disposition(user)
    response.headers['Cache-Control'] = 'no-store'
    return response
