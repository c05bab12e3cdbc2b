"""Email delivery through the outbox: a slow, down or refusing mail server,
retries and backoff, order, pruning and headers."""

import logging
import threading
import time

import jwt
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from werkzeug.security import generate_password_hash

from app import db
from app.models import User
from app.outbox import backoff, enqueue, handler
from app.testing import PASSWORD, AuthActions, SinkHandler, SMTPSink, free_port
from app.testing.data import make_user
from app.testing.links import LINK, reset_link
from app.testing.outbox import (
    outbox_ids,
    outbox_rows,
    queue_emails,
    smtp_server,
    wait_until,
)


def test_console_delivery_without_mail_server(make_app, capsys):
    app = make_app(MAIL_SERVER=None)
    client = app.test_client()
    AuthActions(client).register()
    client.post('/reset_password_request', data={'email': 'susan@example.com'})
    deadline = time.monotonic() + 10
    out = ''
    while time.monotonic() < deadline and 'reset_password/' not in out:
        time.sleep(0.1)
        out += capsys.readouterr().out
    assert 'Subject: [Microblog] Reset Your Password' in out
    assert LINK.search(out)


def test_slow_mail_server_does_not_slow_the_request(client, auth, smtp):
    auth.register()
    smtp.handler.delay = 3.0
    response = client.post(
        '/reset_password_request', data={'email': 'susan@example.com'}
    )
    assert response.status_code == 302
    # Had the request waited on SMTP, the message would be delivered by now.
    assert smtp.messages == []
    smtp.wait_for(1, timeout=20)


def test_mail_server_down_then_back_delivers_without_new_request(make_app, smtp):
    late = SMTPSink()  # nothing listens on its port yet
    app = make_app(MAIL_PORT=late.port)
    client = app.test_client()
    with app.app_context():
        make_user()
    client.post('/reset_password_request', data={'email': 'susan@example.com'})
    wait_until(lambda: any(r.attempts >= 1 for r in outbox_rows(app)))
    (row,) = outbox_rows(app)
    assert row.status == 'pending' and 'refused' in row.last_error
    time.sleep(5)
    back = int(time.time())
    late.start()
    try:
        (message,) = late.wait_for(1, timeout=40)
        assert message['Subject'] == '[Microblog] Reset Your Password'
    finally:
        late.stop()
    # The link was made when the email went out, not when it was requested,
    # so a long outage does not deliver an expired link...
    token = reset_link(message).rsplit('/', 1)[1]
    assert jwt.decode(token, options={'verify_signature': False})['iat'] >= back
    with app.app_context():
        assert User.verify_reset_password_token(token) is not None
    # ...and the outbox never stored it. (The server has the message a
    # moment before the sender records it as sent.)
    wait_until(lambda: outbox_rows(app)[0].status == 'sent')
    (row,) = outbox_rows(app)
    assert row.status == 'sent' and row.kind == 'reset_email'
    assert token not in (row.text_body or '') + (row.html_body or '')


def test_recipient_refused_with_550_fails_without_retry(make_app, smtp, caplog):
    caplog.set_level(logging.INFO)
    smtp.handler.reject.add('ghost@example.com')
    app = make_app()
    (bad,) = queue_emails(app, 1, to='ghost@example.com')
    (good,) = queue_emails(app, 1)
    app.extensions['outbox'].wake()
    smtp.wait_for(1)
    wait_until(lambda: outbox_rows(app)[0].status == 'failed')
    time.sleep(1.5)  # past the first retry delay: it must not be retried
    rows = {r.id: r for r in outbox_rows(app)}
    assert rows[bad].status == 'failed' and rows[bad].attempts == 1
    assert '550' in rows[bad].last_error
    assert rows[good].status == 'sent'
    assert outbox_ids(smtp.messages) == [good]
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(f'message {bad} failed (permanent failure' in m for m in logged)
    assert not any('Body' in m for m in logged)


def test_burst_of_reset_requests_keeps_threads_bounded(make_app, smtp):
    app = make_app()
    with app.app_context():
        password_hash = generate_password_hash(PASSWORD)
        db.session.execute(
            sa.insert(User),
            [
                {'username': f'user{i}', 'email': f'user{i}@example.com',
                 'password_hash': password_hash}
                for i in range(500)
            ],
        )  # fmt: skip
        db.session.commit()
    client = app.test_client()
    baseline = threading.active_count()
    peak = baseline
    for i in range(500):
        response = client.post(
            '/reset_password_request', data={'email': f'user{i}@example.com'}
        )
        assert response.status_code == 302
        peak = max(peak, threading.active_count())
    smtp.wait_for(500, timeout=120)
    assert peak <= baseline + 1  # at most the one sender thread
    assert len({m['To'] for m in smtp.messages}) == 500


def test_misconfigured_tls_and_login_are_reported_plainly(make_app, smtp, caplog):
    caplog.set_level(logging.INFO)
    app = make_app(MAIL_USE_TLS=True)
    (queued,) = queue_emails(app, 1)
    app.extensions['outbox'].wake()
    wait_until(lambda: outbox_rows(app)[0].attempts >= 1)
    row = outbox_rows(app)[0]
    assert row.status == 'pending'
    assert 'does not offer STARTTLS: set MAIL_USE_TLS=false' in row.last_error
    assert any(f'message {queued} not sent' in r.getMessage() for r in caplog.records)


def test_wrong_smtp_credentials_are_reported_plainly(make_app):
    port = free_port()
    controller = Controller(
        SinkHandler(),
        hostname='127.0.0.1',
        port=port,
        authenticator=lambda *args: AuthResult(success=False, handled=False),
        auth_require_tls=False,
    )
    controller.start()
    try:
        app = make_app(MAIL_PORT=port, MAIL_USERNAME='me', MAIL_PASSWORD='wrong')
        queue_emails(app, 1)
        app.extensions['outbox'].wake()
        wait_until(lambda: outbox_rows(app)[0].attempts >= 1)
        error = outbox_rows(app)[0].last_error
        assert 'SMTP login refused (535)' in error
        assert 'check MAIL_USERNAME and MAIL_PASSWORD' in error
    finally:
        controller.stop()


def test_backoff_grows_with_jitter_and_retry_period_ends(make_app):
    first = [backoff(1) for _ in range(50)]
    assert all(1.0 <= d <= 2.0 for d in first) and len(set(first)) > 1
    assert all(512 <= backoff(10) <= 1024 for _ in range(20))
    assert backoff(40) <= 3600

    app = make_app(MAIL_RETRY_PERIOD=0, MAIL_PORT=free_port())
    (queued,) = queue_emails(app, 1)
    app.extensions['outbox'].wake()
    wait_until(lambda: outbox_rows(app)[0].status == 'failed')
    assert 'refused' in outbox_rows(app)[0].last_error


def test_sent_mail_is_pruned_after_retention(make_app, smtp):
    app = make_app(MAIL_RETENTION=0)
    queue_emails(app, 1)
    app.extensions['outbox'].wake()
    smtp.wait_for(1)
    # The server has the message before the sender records it as sent.
    wait_until(lambda: outbox_rows(app)[0].status == 'sent')
    sender = app.extensions['outbox']
    sender._last_upkeep = float('-inf')
    with app.app_context():
        sender.run_once()
    assert outbox_rows(app) == []


def test_production_without_mail_server_keeps_mail_queued(make_app, capsys):
    app = make_app(MAIL_SERVER=None, APP_ENV='production')
    queue_emails(app, 1)
    app.extensions['outbox'].wake()
    wait_until(lambda: outbox_rows(app)[0].attempts >= 1)
    (row,) = outbox_rows(app)
    assert row.status == 'pending' and row.last_error == 'MAIL_SERVER is not set'
    assert 'Body 0' not in capsys.readouterr().out  # not printed in production


@pytest.mark.parametrize('smtputf8', [True, False])
def test_one_message_never_holds_up_another(make_app, smtputf8):
    controller, handler, port = smtp_server(enable_SMTPUTF8=smtputf8)
    try:
        app = make_app(MAIL_PORT=port, MAIL_SENDER_ENABLED=False)
        ids = []
        for to in ('one@example.com', 'j\u00f6rg@example.com', 'x@b\u00fccher.example'):
            ids += queue_emails(app, 1, to=to)
        with app.app_context():
            app.extensions['outbox'].run_once()  # one pass, one batch
        rows = {r.id: r for r in outbox_rows(app)}
        envelopes = [rcpt for _, rcpts in handler.envelopes for rcpt in rcpts]
        assert rows[ids[0]].status == 'sent' and rows[ids[2]].status == 'sent'
        assert 'x@xn--bcher-kva.example' in envelopes  # IDNA domain
        if smtputf8:
            assert rows[ids[1]].status == 'sent'
            assert 'j\u00f6rg@example.com' in envelopes
        else:
            assert rows[ids[1]].status == 'failed'
            assert 'does not offer SMTPUTF8' in rows[ids[1]].last_error
    finally:
        controller.stop()


def test_reset_mail_goes_first_and_never_arrives_stale(make_app, smtp, caplog):
    app = make_app(MAIL_SENDER_ENABLED=False, RESET_TOKEN_EXPIRES=1)
    with app.app_context():
        make_user()
        make_user('bob')
    queue_emails(app, 3)
    client = app.test_client()
    client.post('/reset_password_request', data={'email': 'bob@example.com'})
    time.sleep(1.2)  # bob's request is now older than a link would live
    client.post('/reset_password_request', data={'email': 'susan@example.com'})
    with app.app_context():
        app.extensions['outbox'].run_once()
    subjects = [m['Subject'] for m in smtp.wait_for(4)]
    assert subjects[0] == '[Microblog] Reset Your Password'
    assert [m['To'] for m in smtp.messages].count('bob@example.com') == 0
    statuses = {r.status for r in outbox_rows(app)}
    assert statuses == {'sent', 'expired'}
    assert any('expired unsent' in r.getMessage() for r in caplog.records)


def test_messages_carry_a_stable_message_id_and_the_expected_headers(make_app, smtp):
    late = SMTPSink()  # down for the first attempt
    app = make_app(MAIL_PORT=late.port)
    (queued,) = queue_emails(app, 1)
    wait_until(lambda: outbox_rows(app)[0].attempts >= 1)
    (row,) = outbox_rows(app)
    assert row.message_id.endswith('@microblog.test>')
    late.start()
    try:
        (message,) = late.wait_for(1, timeout=40)
    finally:
        late.stop()
    assert message['Message-ID'] == row.message_id  # kept across the retry
    assert message['Auto-Submitted'] == 'auto-generated'
    assert message['Date']
    assert 'X-Microblog-Outbox-Id' in message


def test_the_sender_builds_one_message_at_a_time_between_requests(make_app):
    """A send-time handler queries and commits: the sender yields to this
    process's requests before building each message, not once per claim."""
    app = make_app(MAIL_SENDER_ENABLED=False, MAIL_SENDER_YIELD=30)
    sender = app.extensions['outbox']
    built = []

    @handler('test_yield')
    def build(row):
        built.append(row.id)
        if len(built) == 1:
            sender.request_started()  # a request arrives during the first
        return None  # nothing to send: dropped

    with app.app_context():
        for _ in range(2):
            enqueue('test_yield', ['reader@example.com'])
        db.session.commit()

    def run():
        with app.app_context():
            sender.run_once()

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: built)
    time.sleep(0.3)
    assert len(built) == 1  # the second waits while the request runs
    sender.request_ended()
    thread.join(10)
    assert len(built) == 2
