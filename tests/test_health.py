"""/healthz and /readyz: plain JSON for load balancers, no session, the
database named when it does not answer, host-checked unless configured."""

import json
import logging
import os
import time
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa

from app import create_app
from app.email import send_email
from app.extensions import db, limiter
from app.testing import AppProcess, free_port
from config import TestConfig


def down_postgres_url() -> str:
    return f'postgresql+psycopg://postgres@127.0.0.1:{free_port()}/microblog_gone'


def test_healthz_answers_plain_json_without_a_session(client):
    response = client.get('/healthz')
    assert response.status_code == 200
    assert response.mimetype == 'application/json'
    assert response.get_json() == {'status': 'ok'}
    assert 'Set-Cookie' not in response.headers
    assert response.headers['Cache-Control'] == 'no-store'


def test_readyz_reports_the_database_and_the_mail_backlog(make_app):
    app = make_app(MAIL_SENDER_ENABLED=False)
    with app.app_context():
        send_email('s', 'a@example.com', ['b@example.com'], 'body')
        db.session.commit()
    response = app.test_client().get('/readyz')
    assert response.status_code == 200
    body = response.get_json()
    assert body['status'] == 'ok' and body['database']['ok'] is True
    assert body['mail']['waiting'] == 1
    assert body['ratelimit_store'] == {'ok': True, 'kind': 'memory'}
    assert 'Set-Cookie' not in response.headers


@pytest.mark.parametrize('where', ['down', 'no tables'])
def test_readyz_answers_503_naming_the_database_and_logs_it_once(
    where, tmp_path, caplog
):
    url = down_postgres_url() if where == 'down' else f'sqlite:///{tmp_path}/new.db'
    app = create_app(
        type(
            'Down',
            (TestConfig,),
            {'SQLALCHEMY_DATABASE_URI': url, 'MAIL_SENDER_ENABLED': False},
        )
    )
    client = app.test_client()
    caplog.set_level(logging.INFO)
    answers = [client.get('/readyz') for _ in range(3)]
    assert [a.status_code for a in answers] == [503] * 3
    body = answers[0].get_json()
    assert body['status'] == 'unavailable' and body['database']['ok'] is False
    assert body['database']['name'].split()[-1] == url.rsplit('/', 1)[1]
    notes = [r for r in caplog.records if 'does not answer' in r.getMessage()]
    assert len(notes) == 1 and notes[0].exc_info is None
    assert client.get('/healthz').status_code == 200  # alive all the same


def test_readyz_reports_a_rate_limit_store_that_is_down(make_app):
    app = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=f'redis://127.0.0.1:{free_port()}/13',
    )
    try:
        response = app.test_client().get('/readyz')
    finally:
        limiter._storage_dead = False
    assert response.status_code == 200  # limits fall back to memory
    assert response.get_json()['ratelimit_store'] == {'ok': False, 'kind': 'redis'}


def production(**overrides) -> type:
    settings = {
        'APP_ENV': 'production',
        'TESTING': False,
        'SECRET_KEY': 'health-test-secret-key-0123456789abcdefgh',
        'SERVER_NAME': 'microblog.example.com',
        'TRUSTED_HOSTS': None,
        'SQLALCHEMY_DATABASE_URI': 'sqlite://',
        'MAIL_SENDER_ENABLED': False,
        'LOG_TO_STDOUT': True,
        **overrides,
    }
    return type('ProductionConfig', (TestConfig,), settings)


@pytest.mark.parametrize('any_host', [False, True])
def test_health_paths_skip_the_host_check_only_if_configured(any_host):
    app = create_app(production(HEALTH_ANY_HOST=any_host))
    client = app.test_client()
    probe = {'Host': '10.0.0.5:8000'}
    assert client.get('/healthz', headers=probe).status_code == (
        200 if any_host else 400
    )
    assert client.get('/login', headers=probe).status_code == 400
    assert (
        client.get('/healthz', headers={'Host': 'microblog.example.com'}).status_code
        == 200
    )


def get(process: AppProcess, path: str) -> tuple[int, dict]:
    url = f'http://127.0.0.1:{process.port}{path}'
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read() or b'{}')
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b'{}')


@pytest.mark.slow
def test_gunicorn_starts_without_its_database_and_says_so_once(smtp):
    base = os.environ.get('TEST_DATABASE_URL', '')
    if base.startswith('postgresql'):
        url = sa.engine.make_url(base)
        url = url.set(database=f'{url.database}_missing').render_as_string(False)
    else:
        url = down_postgres_url()
    process = AppProcess(url, smtp.port).start()
    try:
        status, body = get(process, '/readyz')
        assert status == 503 and body['database']['ok'] is False
        assert url.rsplit('/', 1)[1] in body['database']['name']
        assert get(process, '/healthz') == (200, {'status': 'ok'})
        login = f'http://127.0.0.1:{process.port}/login'
        urllib.request.urlopen(login, timeout=10).close()  # logged, as pages are
        # The sender polls every 0.2 s: give it many polls to fail in.
        deadline = time.monotonic() + 30
        polls = 0
        while time.monotonic() < deadline:
            get(process, '/readyz')
            polls += 1
            if polls >= 15 and 'outbox: the database' in process.output():
                break
            time.sleep(0.2)
    finally:
        process.terminate()
    log = process.output()
    assert log.count('outbox: the database does not answer') == 1
    assert log.count('readyz: the database') == 1
    assert 'Traceback' not in log
    assert 'GET /login' in log
    assert 'GET /readyz' not in log and 'GET /healthz' not in log
