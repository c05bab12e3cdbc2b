"""The app as processes: gunicorn workers and `flask mail worker` sharing
the outbox, SIGTERM, imports that start nothing, the development setup."""

import http.cookiejar
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa
from dotenv import dotenv_values

from app import db
from app.models import Post
from app.testing import PASSWORD, ROOT, SMTPSink
from app.testing.data import make_user
from app.testing.outbox import outbox_ids, outbox_rows, queue_emails, wait_until


@pytest.mark.slow
def test_sigterm_keeps_pending_mail_and_restart_sends_it_once(
    make_app, app_process, tmp_path
):
    sink = SMTPSink()  # down while the first process runs
    app = make_app(MAIL_SENDER_ENABLED=False)
    url = app.config['SQLALCHEMY_DATABASE_URI']
    (queued,) = queue_emails(app, 1)
    first = app_process(url, smtp_port=sink.port).start()
    wait_until(lambda: outbox_rows(app)[0].attempts >= 1)
    assert first.terminate() == 0
    (row,) = outbox_rows(app)
    assert row.status == 'pending'

    sink.start()
    try:
        second = app_process(url, smtp_port=sink.port).start()
        sink.wait_for(1, timeout=30)
        time.sleep(2)
        assert outbox_ids(sink.messages) == [queued]
        assert outbox_rows(app)[0].status == 'sent'
        assert second.terminate() == 0
    finally:
        sink.stop()


@pytest.mark.slow
def test_sigterm_finishes_the_message_in_hand(make_app, app_process, smtp):
    smtp.handler.delay = 2.0
    app = make_app(MAIL_SENDER_ENABLED=False)
    url = app.config['SQLALCHEMY_DATABASE_URI']
    ids = queue_emails(app, 3)
    first = app_process(url).start()
    wait_until(lambda: any(r.status == 'sending' for r in outbox_rows(app)))
    time.sleep(0.5)  # the first message is now in the server's hands
    assert first.terminate() == 0
    statuses = [r.status for r in outbox_rows(app)]
    assert 'sending' not in statuses  # nothing half-sent or stranded
    assert statuses.count('sent') == len(smtp.messages) >= 1
    assert 'pending' in statuses

    smtp.handler.delay = 0
    second = app_process(url).start()
    smtp.wait_for(3, timeout=30)
    time.sleep(1)
    assert outbox_ids(smtp.messages) == ids  # each exactly once
    assert second.terminate() == 0


@pytest.mark.slow
def test_two_processes_share_the_outbox_without_duplicates(make_app, app_process, smtp):
    app = make_app(MAIL_SENDER_ENABLED=False)
    url = app.config['SQLALCHEMY_DATABASE_URI']
    proc = app_process(url, workers=2).start()
    ids = queue_emails(app, 200)
    smtp.wait_for(200, timeout=90)
    # The server has each message a moment before its row is recorded sent.
    wait_until(lambda: {r.status for r in outbox_rows(app)} == {'sent'})
    assert outbox_ids(smtp.messages) == ids
    assert proc.terminate() == 0


@pytest.mark.slow
def test_mail_workers_and_a_web_process_share_the_outbox(
    make_app, app_process, mail_worker, smtp
):
    """Two `flask mail worker` processes and a web process: each once."""
    app = make_app(MAIL_SENDER_ENABLED=False)
    url = app.config['SQLALCHEMY_DATABASE_URI']
    workers = [mail_worker(url).start() for _ in range(2)]
    web = app_process(url).start()
    ids = queue_emails(app, 150)
    smtp.wait_for(150, timeout=90)
    # The server has each message a moment before its row is recorded sent.
    wait_until(lambda: {r.status for r in outbox_rows(app)} == {'sent'})
    assert outbox_ids(smtp.messages) == ids
    assert web.terminate() == 0
    for worker in workers:
        assert worker.terminate() == 0
        output = worker.output()
        assert 'SIGTERM: stopping after the message in hand' in output
        assert 'outbox worker stopped' in output


@pytest.mark.slow
def test_mail_worker_finishes_the_message_in_hand_on_sigterm(
    make_app, mail_worker, smtp
):
    smtp.handler.delay = 2.0
    app = make_app(MAIL_SENDER_ENABLED=False)
    url = app.config['SQLALCHEMY_DATABASE_URI']
    ids = queue_emails(app, 3)
    worker = mail_worker(url).start()
    wait_until(lambda: any(r.status == 'sending' for r in outbox_rows(app)))
    time.sleep(0.5)  # the first message is now in the server's hands
    assert worker.terminate() == 0
    statuses = [r.status for r in outbox_rows(app)]
    assert 'sending' not in statuses
    assert statuses.count('sent') == len(smtp.messages) >= 1
    assert 'pending' in statuses
    assert outbox_ids(smtp.messages) == ids[: len(smtp.messages)]


def test_importing_the_app_starts_no_thread(tmp_path):
    """`import microblog` builds the app and starts nothing that lasts (the
    rate limiter's in-memory store arms one 10 ms expiry timer)."""
    code = (
        'import threading, time, microblog; time.sleep(0.3); '
        'print(sorted(t.name for t in threading.enumerate()))'
    )
    env = {**os.environ, 'APP_ENV': 'development', 'SECRET_KEY': 'x' * 40}
    env['DATABASE_URL'] = f'sqlite:///{tmp_path}/none.db'  # no tables: no polling
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, env=env,
        cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['MainThread']"
    assert 'no such table' not in result.stderr


@pytest.mark.slow
def test_concurrent_posting_from_two_workers_loses_nothing(make_app, app_process):
    """SQLite in WAL with a busy timeout: no 'database is locked' reaches a user."""
    app = make_app(MAIL_SENDER_ENABLED=False)
    with app.app_context():
        for i in range(4):
            make_user(f'writer{i}')
    proc = app_process(app.config['SQLALCHEMY_DATABASE_URI'], workers=2).start()
    base = f'http://127.0.0.1:{proc.port}'
    statuses = []

    def write(username: str) -> None:
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

        def post(path, data):
            body = urllib.parse.urlencode(data).encode()
            opener.addheaders = [('Referer', base + path)]
            with opener.open(base + path, body) as response:
                return response.status, response.geturl()

        page = opener.open(base + '/login').read().decode()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]
        data = {'csrf_token': token, 'username': username, 'password': PASSWORD}
        post('/login', data)
        for n in range(25):
            statuses.append(
                post('/index', {'csrf_token': token, 'post': f'{username} {n}'})
            )

    threads = [threading.Thread(target=write, args=(f'writer{i}',)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert proc.terminate() == 0
    assert len(statuses) == 100
    assert all(code == 200 and url.endswith('/index') for code, url in statuses)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Post.id))) == 100
    assert 'database is locked' not in proc.output()


@pytest.mark.slow
def test_gunicorn_access_log_redacts_reset_tokens(make_app, app_process):
    app = make_app(MAIL_SENDER_ENABLED=False)
    proc = app_process(app.config['SQLALCHEMY_DATABASE_URI']).start()
    url = f'http://127.0.0.1:{proc.port}/reset_password/secret.token-value'
    urllib.request.urlopen(urllib.request.Request(url, method='GET')).close()
    assert proc.terminate() == 0
    output = proc.output()
    assert '/reset_password/[redacted]' in output
    assert 'secret.token-value' not in output


@pytest.mark.slow
def test_env_example_configures_a_working_development_app(tmp_path):
    """Every value in .env.example parses, and the app it describes starts."""
    example = dotenv_values(os.path.join(ROOT, '.env.example'))
    env = {k: v or '' for k, v in example.items()}
    env = {**os.environ, **env, 'DATABASE_URL': f'sqlite:///{tmp_path}/dev.db'}
    code = (
        'from app import create_app; app = create_app(); '
        "assert app.config['APP_ENV'] == 'development'; "
        "assert app.config['SERVER_NAME'] == 'localhost:5000'; "
        "assert app.config['MAIL_USE_TLS'] is False; print('ok')"
    )
    result = subprocess.run(
        [sys.executable, '-c', code],
        env={**env, 'MAIL_SENDER_ENABLED': 'false'},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == 'ok', result.stderr
