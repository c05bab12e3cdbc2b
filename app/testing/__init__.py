"""Helpers that the tests and the benchmarks share (never the app itself):
a free port, a real SMTP server, the app served in a thread or under
gunicorn, a `flask mail worker` process, and a SQL statement counter.
The test suite's own helpers are imported from their modules: data
(accounts, posts), links (emailed links), outbox and browser.
"""

from app.testing.clients import PASSWORD, AuthActions, StatementCounter
from app.testing.processes import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    AppProcess,
    LiveServer,
    MailWorkerProcess,
    PageWatch,
)
from app.testing.smtp import SinkHandler, SMTPSink, free_port

__all__ = [
    'ARTIFACTS',
    'CHROMIUM',
    'CHROMIUM_ARGS',
    'PASSWORD',
    'ROOT',
    'AppProcess',
    'AuthActions',
    'LiveServer',
    'MailWorkerProcess',
    'PageWatch',
    'SMTPSink',
    'SinkHandler',
    'StatementCounter',
    'free_port',
]
