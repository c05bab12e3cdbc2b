"""Health endpoints for load balancers and orchestrators.

`/healthz` (liveness) answers as soon as the process does. `/readyz`
(readiness) answers 503 while the database (with its tables) does not, and
reports the mail backlog and the rate-limit store without failing on them.
Both are plain JSON: no session, no cookie, no page template, no line in
gunicorn's access log (`gunicorn.conf.py`). They are host-checked like every page unless
HEALTH_ANY_HOST=true (probes that use an address as the Host).
"""

import json
import os

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app

from app.dbtypes import utcnow
from app.extensions import db, limiter
from app.outbox import OutboxMessage, Status
from app.startup import redact_url

bp = Blueprint('health', __name__)
PATHS = frozenset({'/healthz', '/readyz'})


def plain_json(body: dict, status: int) -> Response:
    response = Response(json.dumps(body), status, mimetype='application/json')
    response.headers['Cache-Control'] = 'no-store'
    return response


@bp.route('/healthz')
def healthz():
    """Liveness: this process answers requests."""
    return plain_json({'status': 'ok'}, 200)


@bp.route('/readyz')
def readyz():
    """Readiness: 200 when the database answers with its tables, else 503."""
    url = sa.engine.make_url(current_app.config['SQLALCHEMY_DATABASE_URI'])
    name = os.path.basename(url.database or '')  # no server paths on show
    database = {'ok': True, 'name': f'{url.get_backend_name()} {name}'}
    body = {'status': 'ok', 'database': database}
    try:
        body['mail'] = mail_backlog()  # the database and its tables answer
    except sa.exc.SQLAlchemyError as exc:
        body['status'], database['ok'] = 'unavailable', False
        note_database(False, exc)
    else:
        note_database(True)
    finally:
        db.session.rollback()
    body['ratelimit_store'] = ratelimit_check()
    return plain_json(body, 200 if database['ok'] else 503)


def note_database(up: bool, exc: Exception | None = None) -> None:
    """Log a change of state once (probes ask every few seconds)."""
    state = current_app.extensions['health']
    if state.get('database_up', True) == up:
        return
    state['database_up'] = up
    url = redact_url(current_app.config['SQLALCHEMY_DATABASE_URI'])
    if up:
        current_app.logger.info('readyz: the database %s answers again', url)
        return
    reason = ' '.join(str(getattr(exc, 'orig', None) or exc).split())[:300]
    current_app.logger.warning(
        'readyz: the database %s does not answer (%s): answering 503 until it '
        'does; check that it runs, that it exists and has its tables (flask db '
        'upgrade), and DATABASE_URL',
        url,
        reason,
    )


def mail_backlog() -> dict:
    waiting, oldest = db.session.execute(
        sa.select(sa.func.count(), sa.func.min(OutboxMessage.created_at)).where(
            OutboxMessage.status.in_(Status.IN_QUEUE)
        )
    ).one()
    age = int((utcnow() - oldest).total_seconds()) if oldest else 0
    return {'waiting': waiting, 'oldest_seconds': age}


def ratelimit_check() -> dict:
    uri = current_app.config.get('RATELIMIT_STORAGE_URI') or 'memory://'
    if uri.startswith('memory'):
        return {'ok': True, 'kind': 'memory'}
    try:
        ok = bool(limiter.storage.check())
    except Exception:
        ok = False
    # Down, limits are counted in each process's memory (see app.logs).
    return {'ok': ok, 'kind': uri.partition(':')[0]}


def init_app(app: Flask) -> None:
    app.extensions['health'] = {}
    if app.config.get('HEALTH_ANY_HOST') and app.config.get('SERVER_NAME'):
        app.wsgi_app = AnyHost(app.wsgi_app, app.config['SERVER_NAME'])


class AnyHost:
    """WSGI middleware: the health paths answer whatever the Host header, as
    if it were SERVER_NAME; every other path is checked as usual."""

    def __init__(self, wsgi_app, server_name: str):
        self.wsgi_app = wsgi_app
        self.server_name = server_name

    def __call__(self, environ, start_response):
        if environ.get('PATH_INFO') in PATHS:
            environ['HTTP_HOST'] = self.server_name
        return self.wsgi_app(environ, start_response)
