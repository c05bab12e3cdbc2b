"""Your data: the security log, the download of everything, and deleting
the account (with its way back)."""

from flask import abort, render_template, request
from flask_login import current_user, login_required

from app import security_log
from app.account import bp
from app.extensions import db
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
