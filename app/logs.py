"""Where the app's log lines go: a file or stdout, each line once; error
reports to ADMINS in production, off the request thread and throttled; and
the rate-limit store's fall-back to memory, said once with its address."""

import logging
import os
import queue
import smtplib
import sys
import threading
import time
import traceback
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from logging.handlers import RotatingFileHandler

from flask import Flask, current_app, has_app_context
from flask.logging import default_handler

from app.startup import redact_url

FORMAT = '%(asctime)s %(levelname)s: %(message)s [in %(pathname)s:%(lineno)d]'


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time of each record."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


class AdminMailHandler(logging.Handler):
    """Error reports to ADMINS, sent by a thread of their own.

    A request never waits on SMTP, and each distinct error (its exception
    type and the line that raised it) is mailed at most once per `repeat`
    seconds, so a page that fails for everyone cannot flood the inboxes.
    """

    def __init__(self, config, repeat: float = 600.0):
        super().__init__(logging.ERROR)
        keys = ('MAIL_SERVER', 'MAIL_PORT', 'MAIL_USE_TLS', 'MAIL_USE_SSL',
                'MAIL_USERNAME', 'MAIL_PASSWORD', 'MAIL_TIMEOUT',
                'MAIL_DEFAULT_SENDER', 'ADMINS')  # fmt: skip
        self.settings = {key: config.get(key) for key in keys}
        self.repeat = repeat
        self.last_sent: dict[tuple, float] = {}
        self.outbox: queue.Queue = queue.Queue(maxsize=100)
        self.thread: threading.Thread | None = None
        self.guard = threading.Lock()

    @staticmethod
    def error_key(record: logging.LogRecord) -> tuple:
        """What makes two reports the same error (not the URL or the user)."""
        if record.exc_info and record.exc_info[1] is not None:
            frames = traceback.extract_tb(record.exc_info[2])
            last = frames[-1] if frames else None
            where = (last.filename, last.lineno) if last else ()
            return (type(record.exc_info[1]).__name__, *where)
        return (record.pathname, record.lineno, str(record.msg))

    def emit(self, record: logging.LogRecord) -> None:
        key, now = self.error_key(record), time.monotonic()
        with self.guard:
            if now - self.last_sent.get(key, float('-inf')) < self.repeat:
                return
            if len(self.last_sent) >= 1000:
                self.last_sent.clear()
            self.last_sent[key] = now
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._send_forever, name='admin-mail', daemon=True
                )
                self.thread.start()
        subject = f'Microblog failure: {record.getMessage()}'[:150]
        try:
            self.outbox.put_nowait((subject, self.format(record)))
        except queue.Full:
            pass  # the mail server is far behind: this report is dropped

    def _send_forever(self) -> None:
        while True:
            subject, body = self.outbox.get()
            try:
                self.send(subject, body)
            except Exception as exc:  # say so where an operator looks
                print(f'admin error mail not sent: {exc!r}', file=sys.stderr)
            finally:
                self.outbox.task_done()

    def send(self, subject: str, body: str) -> None:
        s = self.settings
        smtp_class = smtplib.SMTP_SSL if s['MAIL_USE_SSL'] else smtplib.SMTP
        message = EmailMessage()
        message['Subject'] = ' '.join(subject.split())
        message['From'] = s['MAIL_DEFAULT_SENDER']
        message['To'] = ', '.join(s['ADMINS'])
        message['Date'] = formatdate(localtime=False)
        message['Message-ID'] = make_msgid()
        message['Auto-Submitted'] = 'auto-generated'
        message.set_content(body)
        server = (s['MAIL_SERVER'], s['MAIL_PORT'])
        with smtp_class(*server, timeout=s['MAIL_TIMEOUT']) as smtp:
            if s['MAIL_USE_TLS']:
                smtp.starttls()
            if s['MAIL_USERNAME']:
                smtp.login(s['MAIL_USERNAME'], s['MAIL_PASSWORD'] or '')
            smtp.send_message(message)


class RateLimitStoreNotice(logging.Filter):
    """Flask-Limiter says its store is down on a logger nobody reads outside
    tests; this says it in the app's log instead, once per outage, with the
    store's address (without its password)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not has_app_context():
            return True
        text = record.getMessage()
        store = redact_url(current_app.config.get('RATELIMIT_STORAGE_URI') or '')
        if 'falling back to in-memory' in text:
            current_app.logger.warning(
                'Rate-limit store %s is unreachable: falling back to in-memory '
                'counting in each process until it answers again.',
                store,
            )
            return False
        if 'storage recovered' in text:
            current_app.logger.info('Rate-limit store %s answers again.', store)
            return False
        return True


def configure_logging(app: Flask) -> None:
    """Everything to a file or stdout, once; errors to ADMINS by email in
    production. The logger is shared by every app in the process, so
    handlers a previous app added are replaced, not stacked."""
    limiter_log = logging.getLogger('flask-limiter')
    if not any(isinstance(f, RateLimitStoreNotice) for f in limiter_log.filters):
        limiter_log.addFilter(RateLimitStoreNotice())
    app.logger.setLevel(logging.INFO)
    if app.debug or app.testing:
        return
    # Flask's own stderr handler would print every line a second time.
    app.logger.removeHandler(default_handler)
    for old in [h for h in app.logger.handlers if getattr(h, 'microblog', False)]:
        app.logger.removeHandler(old)
        old.close()
    config = app.config
    if config['APP_ENV'] == 'production' and config['MAIL_SERVER'] and config['ADMINS']:
        add_handler(app, AdminMailHandler(config))
    if config['LOG_TO_STDOUT']:
        handler = StdoutHandler(sys.stdout)
    else:
        os.makedirs('logs', exist_ok=True)
        handler = RotatingFileHandler(
            'logs/microblog.log', maxBytes=1_000_000, backupCount=10
        )
    handler.setLevel(logging.INFO)
    add_handler(app, handler)


def add_handler(app: Flask, handler: logging.Handler) -> None:
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.microblog = True
    app.logger.addHandler(handler)
