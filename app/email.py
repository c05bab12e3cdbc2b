"""Email: queue rendered messages in the outbox; the sender delivers them."""

from flask import current_app, render_template

from app import db
from app.models import OutboxMessage


def send_email(
    subject: str,
    sender: str | None,
    recipients: list[str],
    text_body: str,
    html_body: str | None = None,
) -> OutboxMessage:
    """Queue a message; it is delivered once the caller's transaction commits.

    Returns at once: the background sender does the SMTP work, retrying
    transient failures, so the request never waits on the mail server.
    """
    message = OutboxMessage(
        kind='email',
        sender=sender or current_app.config['MAIL_DEFAULT_SENDER'],
        recipients=','.join(recipients),
        subject=subject,
        text_body=text_body,
        html_body=html_body,
    )
    db.session.add(message)
    db.session.info['outbox_wake'] = True
    return message


def request_password_reset(email: str) -> OutboxMessage:
    """Queue a reset for whatever account `email` belongs to, if any.

    The request path does the same work for known and unknown addresses;
    the sender looks the account up, throttles and renders the link.
    """
    job = OutboxMessage(kind='password_reset', recipients=email)
    db.session.add(job)
    db.session.info['outbox_wake'] = True
    return job


def public_url(endpoint: str, **values) -> str:
    """An absolute URL on the configured public address, never the Host header."""
    config = current_app.config
    adapter = current_app.url_map.bind(
        config['SERVER_NAME'],
        script_name=config['APPLICATION_ROOT'],
        url_scheme=config['PREFERRED_URL_SCHEME'],
    )
    return adapter.build(endpoint, values, force_external=True)


def render_password_reset_email(user) -> dict:
    """Subject and bodies of a fresh reset email for `user`."""
    token = user.get_reset_password_token(current_app.config['RESET_TOKEN_EXPIRES'])
    return {
        'subject': '[Microblog] Reset Your Password',
        'text_body': render_template(
            'email/reset_password.txt', user=user, token=token
        ),
        'html_body': render_template(
            'email/reset_password.html', user=user, token=token
        ),
    }


def send_password_reset_email(user) -> OutboxMessage:
    """Queue a reset email for a known user right away (no throttling)."""
    return send_email(
        sender=current_app.config['MAIL_DEFAULT_SENDER'],
        recipients=[user.email],
        **render_password_reset_email(user),
    )


def send_password_changed_email(user) -> OutboxMessage:
    return send_email(
        '[Microblog] Your password was changed',
        sender=current_app.config['MAIL_DEFAULT_SENDER'],
        recipients=[user.email],
        text_body=render_template('email/password_changed.txt', user=user),
        html_body=render_template('email/password_changed.html', user=user),
    )
