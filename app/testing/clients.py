"""Driving the app like a person: sign up, confirm, sign in; counting SQL."""

import re
import threading

import sqlalchemy as sa

from app.extensions import db
from app.signups import PendingSignup
from app.testing.smtp import SMTPSink

PASSWORD = 'correct horse battery staple'

CONFIRM_LINK = re.compile(r'https?://[^\s"<]+(/confirm_email/[\w.-]+)')


class AuthActions:
    """Signs up, confirms, signs in and out through the real forms. With an
    SMTP sink, the sign-up confirmation is taken from it and its link
    followed; without one, a fresh confirmation link is made for the test."""

    def __init__(self, client, smtp: 'SMTPSink | None' = None):
        self.client = client
        self.smtp = smtp

    def register(
        self,
        username='susan',
        email='susan@example.com',
        password=PASSWORD,
        confirm=True,
    ):
        response = self.client.post(
            '/register',
            data={
                'username': username,
                'email': email,
                'password': password,
                'password2': password,
            },
        )
        if confirm and response.status_code == 302:
            self.confirm(email.lower())
        return response

    def confirm(self, email: str) -> None:
        if self.smtp is not None:
            message = self.smtp.take('Confirm your email address', email)
            text = message.get_body(('plain',)).get_content()
            path = CONFIRM_LINK.search(text)[1]
        else:
            with self.client.application.app_context():
                pending = db.session.scalar(
                    sa.select(PendingSignup)
                    .where(PendingSignup.email == email)
                    .order_by(PendingSignup.id.desc())
                )
                if pending is None:
                    return
                path = '/confirm_email/' + pending.make_token(3600)
        self.client.get(path)
        self.client.post('/confirm_email/confirm')

    def login(self, username='susan', password=PASSWORD, remember=False, **kw):
        data = {'username': username, 'password': password}
        if remember:
            data['remember_me'] = 'y'
        return self.client.post('/login', data=data, **kw)

    def logout(self):
        return self.client.post('/logout')


class StatementCounter:
    """Counts SQL statements this thread sends (the sender thread's are not)."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[str] = []
        self.thread = threading.get_ident()

    def __call__(self, conn, cursor, statement, *args):
        if threading.get_ident() == self.thread:
            self.statements.append(statement)

    def __enter__(self):
        sa.event.listen(self.engine, 'before_cursor_execute', self)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, 'before_cursor_execute', self)

    @property
    def count(self) -> int:
        return len(self.statements)
