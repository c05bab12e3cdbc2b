"""Command-line tools: `flask mail ...` for operating the outbox, `flask
account ...` for an operator's help with one account."""

import os
import signal
import time

import click
import sqlalchemy as sa
from flask import Blueprint, current_app

from app import deletion, security_log
from app.auth.email import reset_message
from app.dbtypes import utcnow
from app.email import send_email
from app.extensions import db
from app.mfa.models import remove_second_factor
from app.models import User
from app.notices import queue_notice
from app.outbox import OutboxMessage, Status
from app.outbox.doctor import examine
from app.outbox.queue import backlog
from app.passkeys.models import Passkey

bp = Blueprint('cli', __name__, cli_group=None)


@bp.cli.group()
def mail():
    """Inspect and operate the email outbox."""


@mail.command()
def status():
    """Show how many emails are pending, sent and failed, the oldest wait, and
    the backlog by kind (highest priority, sent first, on top)."""
    counts = dict(
        db.session.execute(
            sa.select(OutboxMessage.status, sa.func.count()).group_by(
                OutboxMessage.status
            )
        ).all()
    )
    oldest = db.session.scalar(
        sa.select(sa.func.min(OutboxMessage.created_at)).where(
            OutboxMessage.status.in_(Status.IN_QUEUE)
        )
    )
    for name in Status.ALL:
        click.echo(f'{name:>8}: {counts.get(name, 0)}')
    if oldest is not None:
        age = utcnow() - oldest
        click.echo(f'oldest pending: {int(age.total_seconds())}s old')
    else:
        click.echo('oldest pending: none')
    rows = db.session.execute(backlog()).all()
    if rows:
        click.echo('backlog by kind (priority, waiting, oldest):')
    for kind, priority, count, since in rows:
        age = int((utcnow() - since).total_seconds())
        click.echo(f'  {kind:<20} {priority:>4} {count:>7}  {age}s old')


@mail.command()
def retry():
    """Put every failed email back in the queue for another try."""
    result = db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.status == Status.FAILED)
        .values(
            status=Status.PENDING,
            attempts=0,
            created_at=utcnow(),
            next_attempt_at=utcnow(),
            last_error=None,
        )
    )
    db.session.commit()
    click.echo(f'{result.rowcount} failed email(s) queued again.')


@mail.command('send-test')
@click.argument('address')
@click.option('--wait', default=60, help='Seconds to wait for delivery.')
def send_test(address, wait):
    """Send a test message to ADDRESS through the configured mail server.

    Without MAIL_SERVER, development prints it to the console; production
    refuses at once rather than leave it queued.
    """
    sender = current_app.extensions['outbox']
    if sender.transport.name == 'hold':
        click.echo(
            'MAIL_SERVER is not set, so nothing can be sent: set it (and '
            'MAIL_PORT etc.), then try again. Nothing was queued.'
        )
        raise SystemExit(1)
    queued = send_email(
        '[Microblog] Test message',
        sender=current_app.config['MAIL_DEFAULT_SENDER'],
        recipients=[address],
        text_body='This is a test message from Microblog. Delivery works.',
    )
    db.session.commit()
    row = wait_until_sent(sender, queued, wait)
    if row.status == Status.SENT and sender.transport.name == 'console':
        click.echo(f'Test message {row.id} printed to the console (no MAIL_SERVER).')
        return
    if row.status == Status.SENT:
        click.echo(f'Test message {row.id} sent to the mail server.')
        return
    click.echo(f'Test message {row.id} is {row.status}: {row.last_error}')
    raise SystemExit(1)


def wait_until_sent(sender, message_id: int, wait: float) -> OutboxMessage:
    deadline = time.monotonic() + wait
    row = db.session.get(OutboxMessage, message_id)
    while row.status not in (Status.SENT, Status.FAILED):
        if time.monotonic() >= deadline:
            break
        sender.run_once()  # ends the session: load the row again
        row = db.session.get(OutboxMessage, message_id)
        if row.status == Status.PENDING:
            click.echo(f'not sent yet: {row.last_error or "waiting"}')
            delay = (row.next_attempt_at - utcnow()).total_seconds()
            time.sleep(min(5.0, max(0.5, delay)))
    return row


@mail.command()
def worker():
    """Send queued email in the foreground until SIGTERM or Ctrl-C.

    Run one or more of these beside web workers started with
    MAIL_SENDER_ENABLED=false; they share the outbox, each message sent once
    (docs/operations.md gives the one exception: a worker killed between the
    server's acceptance of a message and its record).
    On a stop signal the message in hand is finished, the rest stay queued.
    """
    sender = current_app.extensions['outbox']

    def _stop(signum, _frame):
        click.echo(f'{signal.Signals(signum).name}: stopping after the message in hand')
        sender.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f'outbox worker {sender.name}: sending with {sender.transport.name}')
    sender.run_forever()
    click.echo('outbox worker stopped')


@mail.command()
@click.option(
    '--preview',
    type=click.Path(file_okay=False),
    help='Also write a sample reset email (text and HTML) into this folder.',
)
def doctor(preview):
    """Check the mail settings against the server, sending nothing.

    Connects exactly as the sender would and says what works and what to
    change: STARTTLS, implicit TLS, login, SMTPUTF8, the From domain.
    Exits 1 if anything would stop mail from going out.
    """
    report = examine(current_app)
    for kind, text in report.lines:
        click.echo(f'{kind:>7}: {text}')
    if preview:
        write_preview(preview)
    if not report.healthy:
        raise SystemExit(1)


def write_preview(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    sample = User(id=0, username='example', email='someone@example.com')
    message = reset_message(sample)
    for name, body in (('reset_password.txt', message.body),
                       ('reset_password.html', message.html)):  # fmt: skip
        with open(os.path.join(folder, name), 'w', encoding='utf-8') as f:
            f.write(body)
    click.echo(f'preview: wrote reset_password.txt and .html to {folder}')


@bp.cli.group()
def account():
    """Help the owner of one account (check who asks, out of band, first)."""


@account.command('reset-two-factor')
@click.argument('username')
@click.option('--yes', is_flag=True, help='Do not ask for confirmation.')
@click.option('--reason', default='', help='Why, for the audit log (no secrets).')
def reset_two_factor(username, yes, reason):
    """Remove USERNAME's second factor: authenticator app, recovery codes,
    trusted browsers, and every passkey.

    For an owner who lost every factor and every recovery code. Check their
    identity out of band first (e.g. a reply from the account's confirmed
    email address plus something only they know): whoever you help gets
    the account with only its password. The change is audited and the
    owner gets a notice with a "This wasn't me" link.
    """
    user = User.by_username(username)
    if user is None:
        raise click.ClickException(f'no account named {username!r}')
    if not yes:
        click.confirm(f'Remove the second factor of {user.username}?', abort=True)
    had_factor = remove_second_factor(user)
    passkeys = Passkey.remove_all(user)
    if not had_factor and not passkeys:
        click.echo(f'{user.username} has no second factor: nothing to do.')
        return
    private = {
        'reason': reason[:200] or None,
        'operator': os.environ.get('USER'),
        'passkeys': passkeys,
    }
    log = security_log.record('two_factor_reset_by_operator', user, private=private)
    queue_notice(user, 'two_factor_reset', log=log)
    db.session.commit()
    click.echo(
        f'Removed the second factor of {user.username} and {passkeys} '
        'passkey(s); a notice is queued.'
    )


@account.command()
def purge():
    """Remove for good every account deleted more than ACCOUNT_DELETION_GRACE
    days ago (its posts, follows, sessions, factors and mail; its username
    and address become free), and security events older than
    SECURITY_LOG_DAYS. The mail worker also runs this periodically."""
    removed = deletion.purge()
    click.echo(f'{removed} account(s) purged.')
