"""Accounts and posts made directly in the database, a cookie carried from
one client to another, and which database and hash method the suite uses."""

import os
from datetime import UTC, datetime, timedelta

from app import db
from app.models import Post, User
from app.testing.clients import PASSWORD

NEW_PASSWORD = 'a brand new passphrase'
ON_POSTGRES = bool(os.environ.get('TEST_DATABASE_URL', '').startswith('postgres'))
# TestConfig hashes cheaply; the tests of hashing use the production method.
SCRYPT = {'PASSWORD_HASH_METHOD': 'scrypt'}


def make_user(username='susan', email=None, password=PASSWORD, **fields) -> User:
    """An established account (its email address confirmed)."""
    email = email or f'{username}@example.com'
    user = User(username=username, email=email, email_confirmed=True, **fields)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def add_posts(author: User, n: int, start: datetime | None = None) -> None:
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        db.session.add(
            Post(
                body=f'{author.username} post {i}',
                author=author,
                timestamp=start + timedelta(minutes=i),
            )
        )
    db.session.commit()


def copy_cookie(source, target, name: str) -> None:
    cookie = source.get_cookie(name, domain='microblog.test')
    assert cookie is not None, name
    target.set_cookie(name, cookie.value, domain=cookie.domain)
