"""`flask mail`: status, retry, send-test and doctor."""

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import AuthResult

from app import db
from app.outbox import OutboxMessage
from app.testing import free_port
from app.testing.outbox import outbox_rows, queue_emails, smtp_server


def test_mail_cli_status_retry_and_send_test(make_app, smtp):
    app = make_app(MAIL_SENDER_ENABLED=False)
    runner = app.test_cli_runner()
    queue_emails(app, 2)
    with app.app_context():
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == 1)
            .values(status='failed', last_error='550 no such user')
        )
        db.session.commit()
    result = runner.invoke(args=['mail', 'status'])
    assert result.exit_code == 0
    assert ' pending: 1' in result.output and '  failed: 1' in result.output
    assert 'oldest pending: ' in result.output and 's old' in result.output

    result = runner.invoke(args=['mail', 'retry'])
    assert '1 failed email(s) queued again.' in result.output
    assert {r.status for r in outbox_rows(app)} == {'pending'}

    result = runner.invoke(args=['mail', 'send-test', 'ops@example.com'])
    assert result.exit_code == 0, result.output
    assert 'sent to the mail server' in result.output
    subjects = [m['Subject'] for m in smtp.wait_for(3)]
    assert '[Microblog] Test message' in subjects


def run_doctor(app, *args):
    return app.test_cli_runner().invoke(args=['mail', 'doctor', *args])


def test_mail_doctor_reports_a_healthy_server_and_writes_a_preview(make_app, tmp_path):
    controller, handler, port = smtp_server(
        enable_SMTPUTF8=True,
        authenticator=lambda server, session, envelope, mechanism, auth: AuthResult(
            success=auth.login == b'me' and auth.password == b'right'
        ),
        auth_require_tls=False,
    )
    try:
        app = make_app(
            MAIL_PORT=port, MAIL_USERNAME='me', MAIL_PASSWORD='right',
            MAIL_SENDER_ENABLED=False,
        )  # fmt: skip
        result = run_doctor(app, '--preview', str(tmp_path / 'preview'))
        assert result.exit_code == 0, result.output
        assert f'connecting to 127.0.0.1:{port} with no encryption' in result.output
        assert 'login accepted for me' in result.output
        assert 'SMTPUTF8: supported' in result.output
        assert 'From address: no-reply@microblog.test' in result.output
        text = (tmp_path / 'preview' / 'reset_password.txt').read_text()
        assert 'https://microblog.test/reset_password/' in text
        assert (tmp_path / 'preview' / 'reset_password.html').exists()
    finally:
        controller.stop()
    assert handler.messages == [] and handler.envelopes == []  # sent nothing


@pytest.mark.parametrize(
    'settings, params, words',
    [
        ({'MAIL_USE_TLS': True}, {}, 'does not offer STARTTLS'),
        ({'MAIL_USE_SSL': True}, {}, 'implicit TLS failed'),
        (
            {'MAIL_USERNAME': 'me', 'MAIL_PASSWORD': 'wrong'},
            {
                'authenticator': lambda *a: AuthResult(success=False, handled=False),
                'auth_require_tls': False,
            },
            'login refused (535): check MAIL_USERNAME and MAIL_PASSWORD',
        ),
        ({}, None, 'connection refused by 127.0.0.1'),
        ({'MAIL_DEFAULT_SENDER': 'x@elsewhere.example'}, {}, 'not on SERVER_NAME'),
        ({}, {'enable_SMTPUTF8': False}, 'SMTPUTF8: not offered'),
    ],
)
def test_mail_doctor_says_what_to_change(make_app, settings, params, words):
    controller = None
    if params is None:
        port = free_port()  # nothing listens: the server is down
    else:
        controller, _, port = smtp_server(**params)
    try:
        app = make_app(MAIL_PORT=port, MAIL_SENDER_ENABLED=False, **settings)
        result = run_doctor(app)
    finally:
        if controller is not None:
            controller.stop()
    assert words in result.output, result.output
    healthy = 'not on SERVER_NAME' in words or 'not offered' in words
    assert result.exit_code == (0 if healthy else 1)
