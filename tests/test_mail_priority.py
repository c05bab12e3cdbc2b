"""Issue 21, point 4: reset mail is never starved. A password reset has its
own priority above every other kind, confirmations included; a backlog of
other mail never delays it; `flask mail status` shows the backlog by kind and
the age of the oldest message."""

from datetime import timedelta

import sqlalchemy as sa

from app.account.email import queue_email_change
from app.dbtypes import utcnow
from app.email import send_email
from app.extensions import db
from app.models import User
from app.outbox import OutboxMessage, Priority
from app.testing import PASSWORD

RESET_SUBJECT = '[Microblog] Reset Your Password'


def make_account(name='susan') -> User:
    user = User(username=name, email=f'{name}@example.com')
    user.set_password(PASSWORD)
    user.email_confirmed = True
    db.session.add(user)
    db.session.commit()
    return user


def queue_confirmations(app, n: int) -> None:
    """`n` change-email confirmations, as a flood of /change_email would."""
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == 'susan'))
        for i in range(n):
            queue_email_change(user, f'new{i}@example.com')
        db.session.commit()


def test_a_reset_goes_before_a_backlog_of_confirmations(make_app, smtp):
    app = make_app(MAIL_SENDER_ENABLED=False)
    with app.app_context():
        make_account()
    queue_confirmations(app, 20)
    with app.app_context():
        send_email('Hello', None, ['reader@example.com'], 'Body')
        db.session.commit()
    client = app.test_client()
    client.post('/reset_password_request', data={'email': 'susan@example.com'})
    with app.app_context():
        kinds = sa.select(OutboxMessage.kind, OutboxMessage.priority).distinct()
        priorities = dict(db.session.execute(kinds).all())
        app.extensions['outbox'].run_once()
    assert priorities['password_reset'] == Priority.RESET > priorities['change_email']
    assert priorities['change_email'] > priorities['email']
    subjects = [m['Subject'] for m in smtp.wait_for(22)]
    assert subjects[0] == RESET_SUBJECT  # queued last, sent first
    assert subjects[-1] == 'Hello'


def test_a_backlog_being_sent_never_delays_a_reset(make_app, smtp):
    """150 confirmations are being sent, in claims of 30 (a long lease),
    when a reset is requested: it goes out right after the message in hand,
    not 151st."""
    smtp.handler.delay = 0.02
    app = make_app(MAIL_LEASE=30, MAIL_TIMEOUT=1)
    with app.app_context():
        make_account()
    queue_confirmations(app, 150)
    smtp.wait_for(10, timeout=30)  # the sender is in the middle of the backlog
    before = len(smtp.messages)
    client = app.test_client()
    client.post('/reset_password_request', data={'email': 'susan@example.com'})
    smtp.take(RESET_SUBJECT, 'susan@example.com', timeout=30)
    position = len(smtp.messages) + 1  # the reset's place in the arrival order
    # At most the message in hand and the one being accepted got in between.
    assert position - before <= 3, (before, position)
    assert before + 3 < 151


def test_mail_status_shows_the_backlog_by_kind_and_its_age(make_app):
    app = make_app(MAIL_SENDER_ENABLED=False)
    with app.app_context():
        make_account()
    queue_confirmations(app, 3)
    with app.app_context():
        send_email('Hello', None, ['reader@example.com'], 'Body')
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.kind == 'email')
            .values(created_at=utcnow() - timedelta(seconds=95))
        )
        db.session.commit()
    app.test_client().post(
        '/reset_password_request', data={'email': 'susan@example.com'}
    )
    result = app.test_cli_runner().invoke(args=['mail', 'status'])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index('backlog by kind (priority, waiting, oldest):')
    backlog = [line.split() for line in lines[start + 1 :]]
    assert [row[:3] for row in backlog] == [
        ['password_reset', '20', '1'],
        ['change_email', '10', '3'],
        ['email', '0', '1'],
    ]
    assert int(backlog[2][3].removesuffix('s')) >= 95
    assert int(backlog[0][3].removesuffix('s')) < 60
    assert ' pending: 5' in result.output
    assert 'oldest pending: ' in result.output
