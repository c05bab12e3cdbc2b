"""Users, posts and follows; query logic lives here, transactions in the routes."""

import functools
from datetime import datetime, timedelta
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_login import UserMixin

from app import tokens
from app.database import attach
from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db
from app.identity import (
    canonical_username,
    hash_password,
    new_avatar_seed,
    password_matches,
    username_key_default,
)
from app.urls import avatar_url_maker

followers = sa.Table(
    'followers',
    db.metadata,
    sa.Column('follower_id', sa.ForeignKey('user.id'), primary_key=True),
    sa.Column('followed_id', sa.ForeignKey('user.id'), primary_key=True),
    sa.Index('ix_followers_followed_id', 'followed_id'),
)


class User(UserMixin, db.Model):
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # Shown as typed; unique and looked up by its canonical form.
    username: so.Mapped[str] = so.mapped_column(sa.String(64))
    username_key: so.Mapped[str] = so.mapped_column(
        sa.String(64), index=True, unique=True, default=username_key_default
    )
    # Always stored normalized and lower-cased, so lookups are exact.
    email: so.Mapped[str] = so.mapped_column(sa.String(254), index=True, unique=True)
    # Proven by a link sent to it (sign-up, email change or password reset).
    email_confirmed: so.Mapped[bool] = so.mapped_column(default=False)
    password_hash: so.Mapped[str | None] = so.mapped_column(sa.String(256))
    about_me: so.Mapped[str | None] = so.mapped_column(sa.String(140))
    last_seen: so.Mapped[datetime | None] = so.mapped_column(
        UTCDateTime(), default=utcnow
    )
    # When the last reset email was queued, for per-account throttling.
    reset_sent_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    avatar_seed: so.Mapped[str] = so.mapped_column(
        sa.String(32), default=new_avatar_seed
    )
    # Deleted by its owner: hidden until restored or purged (app.deletion).
    deleted_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime(), index=True)
    # Pages and emails in this language (app.i18n); None: the browser's.
    language: so.Mapped[str | None] = so.mapped_column(sa.String(16))

    posts: so.WriteOnlyMapped['Post'] = so.relationship(back_populates='author')
    following: so.WriteOnlyMapped['User'] = so.relationship(
        secondary=followers,
        primaryjoin=(followers.c.follower_id == id),
        secondaryjoin=(followers.c.followed_id == id),
        back_populates='followers',
    )
    followers: so.WriteOnlyMapped['User'] = so.relationship(
        secondary=followers,
        primaryjoin=(followers.c.followed_id == id),
        secondaryjoin=(followers.c.follower_id == id),
        back_populates='following',
    )

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault('avatar_seed', new_avatar_seed())  # before any flush
        super().__init__(**kwargs)

    def __repr__(self) -> str:
        return f'<User {self.username}>'

    # The sign-in (app.sessions.UserSession) this request came with, set at
    # sign-in or by the user loader (app.sessions), on this object only.
    session_token = None  # the cookie's secret
    session_id = None  # its UserSession row
    session_created_at = None  # when the sign-in began (its absolute lifetime)
    session_last_seen = None  # its last recorded activity (its idle lifetime)
    session_proven_at = None  # its last proof of identity (app.reauth)

    @so.validates('username')
    def _set_username_key(self, _key: str, username: str) -> str:
        self.username_key = canonical_username(username)
        return username

    def get_id(self) -> str | None:
        return self.session_token

    def set_password(self, password: str) -> None:
        self.password_hash = hash_password(password)

    def replace_password(self, expected_hash: str | None, password: str) -> bool:
        """Compare-and-set: change the password only if its hash is still
        `expected_hash`, so of two racing resets with one link only one wins."""
        new_hash = hash_password(password)
        result = db.session.execute(
            sa.update(User)
            .where(User.id == self.id, User.password_hash == expected_hash)
            .values(password_hash=new_hash)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return False
        self.password_hash = new_hash
        return True

    def replace_email(self, expected: str, email: str) -> bool:
        """Compare-and-set, confirmed: False (rolled back) if the address is
        no longer `expected` or another account holds `email`."""
        try:
            result = db.session.execute(
                sa.update(User)
                .where(User.id == self.id, User.email == expected)
                .values(email=email, email_confirmed=True)
                .execution_options(synchronize_session=False)
            )
        except sa.exc.IntegrityError:
            db.session.rollback()
            return False
        if result.rowcount != 1:
            db.session.rollback()
            return False
        so.attributes.set_committed_value(self, 'email', email)
        so.attributes.set_committed_value(self, 'email_confirmed', True)
        return True

    def check_password(self, password: str) -> bool:
        return password_matches(self.password_hash, password)

    def avatar(self, size: int) -> str:
        return avatar_url_maker(size)(self.avatar_seed, self.email)

    def touch_last_seen(self, every: int = 60) -> bool:
        """Record a visit, at most once per `every` seconds (no write per
        request; app.sessions passes LAST_SEEN_INTERVAL)."""
        now = utcnow()
        if self.last_seen and now - self.last_seen < timedelta(seconds=every):
            return False
        self.last_seen = now
        return True

    # Following

    def follow(self, user: 'User') -> None:
        if user.id != self.id and not self.is_following(user):
            self.following.add(user)

    def unfollow(self, user: 'User') -> None:
        if self.is_following(user):
            self.following.remove(user)

    def is_following(self, user: 'User') -> bool:
        query = sa.select(followers.c.followed_id).where(
            followers.c.follower_id == self.id, followers.c.followed_id == user.id
        )
        return db.session.scalar(query) is not None

    def followers_count(self) -> int:
        query = sa.select(sa.func.count()).where(followers.c.followed_id == self.id)
        return db.session.scalar(query)

    def following_count(self) -> int:
        query = sa.select(sa.func.count()).where(followers.c.follower_id == self.id)
        return db.session.scalar(query)

    @staticmethod
    def profile(
        username: str, viewer: Optional['User'] = None
    ) -> tuple[Optional['User'], dict]:
        """The user named `username` (any case or width), with its follower
        and following counts and whether `viewer` follows it, in one query;
        (None, {}) if there is no such user."""
        params = {
            'key': canonical_username(username),
            'viewer': viewer.id if viewer else None,
        }
        row = db.session.connection().execute(_profile_query(), params).first()
        if row is None:
            return None, {}
        stats = {
            'followers': row.followers,
            'following': row.following,
            'is_followed': bool(row.is_followed),
        }
        return attach(User, row), stats

    def following_posts(self) -> sa.Select:
        """Own and followed users' posts, newest first (the plain query;
        app.timeline reads pages of it from the indexes)."""
        followed = sa.select(followers.c.followed_id).where(
            followers.c.follower_id == self.id
        )
        return Post.listing().where(
            sa.or_(Post.user_id == self.id, Post.user_id.in_(followed))
        )

    # Emailed-link tokens (app.tokens: signed, expiring, purpose-bound)

    def make_token(self, purpose: str, expires_in: int, **claims) -> str:
        return tokens.issue(self, purpose, expires_in, **claims)

    @classmethod
    def from_token(cls, token: str, purpose: str) -> tuple:
        """(user or None, reason, claims): see app.tokens.check. An account
        scheduled for deletion answers only its restore link (app.deletion)."""

        def load(id: int):
            user = db.session.get(cls, id)
            gone = user and user.deleted_at and purpose != 'restore_account'
            return None if gone else user

        return tokens.check(token, purpose, load)

    def get_reset_password_token(self, expires_in: int = 600) -> str:
        return self.make_token('reset_password', expires_in)

    @staticmethod
    def verify_reset_password_token(token: str) -> Optional['User']:
        """The user the token was issued for, or None if it is bad in any way."""
        return User.check_reset_password_token(token)[0]

    @staticmethod
    def check_reset_password_token(token: str) -> tuple[Optional['User'], str]:
        """(user, reason): reason is 'ok', 'expired', 'used' or 'invalid'."""
        return User.from_token(token, 'reset_password')[:2]

    @classmethod
    def by_email(cls, email: str) -> Optional['User']:
        return db.session.scalar(sa.select(cls).where(cls.email == email))

    @classmethod
    def by_username(cls, username: str) -> Optional['User']:
        key = canonical_username(username)
        return db.session.scalar(sa.select(cls).where(cls.username_key == key))

    def claim_reset_slot(self, interval: int) -> bool:
        """Take this account's reset-email slot, atomically (a conditional
        UPDATE: concurrent processes cannot both win); False if throttled."""
        now = utcnow()
        result = db.session.execute(
            sa.update(User)
            .where(
                User.id == self.id,
                sa.or_(
                    User.reset_sent_at.is_(None),
                    User.reset_sent_at <= now - timedelta(seconds=interval),
                ),
            )
            .values(reset_sent_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


class Post(db.Model):
    # Explore walks this index; the timeline too, user_id read from it
    # (app.timeline names it to SQLite).
    TIMELINE_INDEX = sa.Index('ix_post_timeline', 'timestamp', 'id', 'user_id')
    __table_args__ = (
        # The profile list and the per-author timeline walk this index.
        sa.Index('ix_post_user_id_timestamp', 'user_id', 'timestamp', 'id'),
        TIMELINE_INDEX,
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    body: so.Mapped[str] = so.mapped_column(sa.String(140))
    timestamp: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey(User.id))

    author: so.Mapped[User] = so.relationship(back_populates='posts')

    def __repr__(self) -> str:
        return f'<Post {self.body}>'

    @staticmethod
    def listing() -> sa.Select:
        """Posts newest first (app.timeline.page_of() makes pages of it)."""
        return sa.select(Post).order_by(Post.timestamp.desc(), Post.id.desc())


# Built once each: these cost less to run than to build.
@functools.cache
def _profile_query() -> sa.Select:
    f, count = followers, sa.select(sa.func.count())
    viewer = sa.bindparam('viewer', type_=sa.Integer)
    return sa.select(
        *User.__table__.c,
        count.where(f.c.followed_id == User.id).scalar_subquery().label('followers'),
        count.where(f.c.follower_id == User.id).scalar_subquery().label('following'),
        sa.exists()
        .where(f.c.follower_id == viewer, f.c.followed_id == User.id)
        .label('is_followed'),
    ).where(User.username_key == sa.bindparam('key'), User.deleted_at.is_(None))
