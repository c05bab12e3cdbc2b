"""Generic email: queue a message, build one when sent (in its recipient's
language), build public links. No feature."""

from flask import current_app, render_template
from flask_mail import Message

from app.i18n import in_language, recipient_language, tag
from app.outbox import enqueue


def send_email(
    subject: str,
    sender: str | None,
    recipients: list[str],
    text_body: str,
    html_body: str | None = None,
) -> int | None:
    """Queue a message (its outbox id, None over the mail budget); it is
    delivered once the caller's transaction commits.

    Returns at once: a sender does the SMTP work, retrying transient
    failures, so the request never waits on the mail server.
    """
    return enqueue(
        'email',
        recipients,
        sender=sender or current_app.config['MAIL_DEFAULT_SENDER'],
        subject=subject,
        text_body=text_body,
        html_body=html_body,
    )


def public_url(endpoint: str, **values) -> str:
    """An absolute URL on the configured public address, never the Host header."""
    config = current_app.config
    adapter = current_app.url_map.bind(
        config['SERVER_NAME'],
        script_name=config['APPLICATION_ROOT'],
        url_scheme=config['PREFERRED_URL_SCHEME'],
    )
    return adapter.build(endpoint, values, force_external=True)


def build_message(
    subject: str, to: str, template: str, language: str | None = None, **context
) -> Message:
    """A message from `email/<template>.txt` and `.html`, for a send-time
    handler (so its link is made when it is sent, never stored), in
    `language`, else the language stored for `user` (the recipient) now.
    `subject` may be a lazy string: it is translated here too."""
    language = language or recipient_language(context.get('user'))
    with in_language(language):
        message = Message(
            subject=str(subject),
            sender=current_app.config['MAIL_DEFAULT_SENDER'],
            recipients=[to],
            body=render_template(f'email/{template}.txt', **context),
            html=render_template(f'email/{template}.html', **context),
        )
    message.extra_headers = {'Content-Language': tag(language)}
    return message
