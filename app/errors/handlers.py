from flask import current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, SecurityError

from app.errors import bp
from app.extensions import db
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.security import audit

MESSAGES = {
    400: _l('The request could not be understood.'),
    405: _l('That action cannot be done this way.'),
    413: _l(
        'That was more than this site accepts in one go. Shorten it and try again.'
    ),
    429: _l('Too many attempts. Please wait a few minutes and try again.'),
}
# Werkzeug's names of those errors, to translate (others stay in English).
TITLES = {
    400: _l('Bad Request'),
    405: _l('Method Not Allowed'),
    413: _l('Request Entity Too Large'),
    429: _l('Too Many Requests'),
}


@bp.app_errorhandler(404)
def not_found_error(error):
    return render_template('errors/404.html', title=_('Not Found')), 404


@bp.app_errorhandler(500)
def internal_error(error):
    db.session.rollback()
    return render_template('errors/500.html', title=_('Error')), 500


@bp.app_errorhandler(CSRFError)
def csrf_error(error):
    message = _(
        'This form has expired or did not come from this site, so nothing was '
        'changed. Go back, reload the page and try again.'
    )
    return render_template(
        'errors/error.html', title=_('Bad Request'), code=400, message=message
    ), 400


@bp.app_errorhandler(SecurityError)
def untrusted_host(error):
    # No URLs can be built for an untrusted host: answer in plain text.
    note_unknown_host(request.environ.get('HTTP_HOST', '')[:200])
    return 'Bad Request: unknown host.', 400, {'Content-Type': 'text/plain'}


def note_unknown_host(host: str) -> None:
    """Log each refused host once (per process, up to 1,000 of them): a
    wrong SERVER_NAME shows up at the first request, scanners stay quiet."""
    seen = current_app.extensions.setdefault('unknown_hosts', set())
    if host in seen or len(seen) >= 1000:
        return
    seen.add(host)
    config = current_app.config
    current_app.logger.warning(
        'Refused requests for host %r with 400: this site answers only for '
        'TRUSTED_HOSTS %s (SERVER_NAME is %s). If that host is yours, set '
        'SERVER_NAME or TRUSTED_HOSTS to include it.',
        host,
        ','.join(config.get('TRUSTED_HOSTS') or []),
        config.get('SERVER_NAME'),
    )


@bp.app_errorhandler(HTTPException)
def http_error(error):
    if error.code == 429:
        audit('rate_limited', path=request.path)
    message = MESSAGES.get(error.code, error.description)
    title = TITLES.get(error.code, error.name)
    return render_template(
        'errors/error.html', title=title, code=error.code, message=message
    ), error.code
