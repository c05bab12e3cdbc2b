"""Fill a database through the app's own models, fast (bulk inserts)."""

import random
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from app import db
from app.models import Post, User, followers

PASSWORD = 'benchmark password'
CHUNK = 20_000


def seed(app, users: int, follows: int, posts: int, rng_seed: int = 42) -> float:
    """Recreate the schema and fill it; returns the seconds it took."""
    from flask_migrate import upgrade

    rng = random.Random(rng_seed)
    started = time.perf_counter()
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text('DROP TABLE IF EXISTS alembic_version'))
        upgrade()  # the real schema, indexes included
        password_hash = generate_password_hash(PASSWORD)
        now = datetime.now(UTC)
        db.session.execute(
            sa.insert(User),
            [
                {
                    'username': f'user{i}',
                    'email': f'user{i}@example.com',
                    'email_confirmed': True,
                    'password_hash': password_hash,
                    'last_seen': now,
                }
                for i in range(users)
            ],
        )
        ids = list(db.session.scalars(sa.select(User.id).order_by(User.id)))
        pairs = [
            {'follower_id': uid, 'followed_id': other}
            for uid in ids
            for other in rng.sample(
                [x for x in ids if x != uid], min(follows, users - 1)
            )
        ]
        for start in range(0, len(pairs), CHUNK):
            db.session.execute(sa.insert(followers), pairs[start : start + CHUNK])
        first = now - timedelta(seconds=posts)
        for start in range(0, posts, CHUNK):
            rows = [
                {
                    'body': f'Post number {n} from the benchmark seed.',
                    'timestamp': first + timedelta(seconds=n),
                    'user_id': rng.choice(ids),
                }
                for n in range(start, min(posts, start + CHUNK))
            ]
            db.session.execute(sa.insert(Post), rows)
        db.session.commit()
        if db.engine.dialect.name == 'postgresql':
            with db.engine.connect() as conn:
                conn.execution_options(isolation_level='AUTOCOMMIT').execute(
                    sa.text('VACUUM ANALYZE')
                )
        else:
            with db.engine.begin() as conn:
                conn.execute(sa.text('ANALYZE'))
    return time.perf_counter() - started
