"""Fill a database through the app's own models, fast (bulk inserts)."""

import random
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from app import db
from app.models import Post, User, followers

PASSWORD = 'benchmark password'
HEAVY = 'heavy'  # the heavy follower's username
CHUNK = 20_000


def seed(
    app,
    users: int,
    follows: int,
    posts: int,
    heavy_follows: int = 0,
    rng_seed: int = 42,
) -> float:
    """Recreate the schema and fill it; returns the seconds it took.

    `users` accounts user0, user1, … each follow `follows` others at random;
    with `heavy_follows`, one more account, HEAVY, follows that many.
    Posts are spread at random over all accounts, one a second up to now.
    """
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
        names = [f'user{i}' for i in range(users)]
        if heavy_follows:
            names.append(HEAVY)
        insert(
            User,
            (
                {
                    'username': name,
                    'email': f'{name}@example.com',
                    'email_confirmed': True,
                    'password_hash': password_hash,
                    'last_seen': now,
                }
                for name in names
            ),
        )
        ids = list(db.session.scalars(sa.select(User.id).order_by(User.id)))
        insert(followers, follow_pairs(rng, ids[:users], follows))
        if heavy_follows:
            chosen = rng.sample(ids[:users], min(heavy_follows, users))
            pairs = ({'follower_id': ids[-1], 'followed_id': i} for i in chosen)
            insert(followers, pairs)
        first = now - timedelta(seconds=posts)
        insert(
            Post,
            (
                {
                    'body': f'Post number {n} from the benchmark seed.',
                    'timestamp': first + timedelta(seconds=n),
                    'user_id': rng.choice(ids),
                }
                for n in range(posts)
            ),
        )
        db.session.commit()
        analyze()
    return time.perf_counter() - started


def follow_pairs(rng: random.Random, ids: list[int], follows: int):
    """Each of `ids` follows `follows` others, without scanning `ids` per user."""
    follows = min(follows, len(ids) - 1)
    for uid in ids:
        chosen = [i for i in rng.sample(ids, follows + 1) if i != uid][:follows]
        for other in chosen:
            yield {'follower_id': uid, 'followed_id': other}


def insert(target, rows) -> None:
    """Bulk-insert an iterable of row dicts, CHUNK at a time."""
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            db.session.execute(sa.insert(target), chunk)
            chunk = []
    if chunk:
        db.session.execute(sa.insert(target), chunk)


def analyze() -> None:
    if db.engine.dialect.name == 'postgresql':
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level='AUTOCOMMIT').execute(
                sa.text('VACUUM ANALYZE')
            )
    else:
        with db.engine.begin() as conn:
            conn.execute(sa.text('ANALYZE'))
        # Fold the seed's write-ahead log into the database, as a running
        # site's checkpoints have long done: readers would otherwise look up
        # every page in a WAL of hundreds of MB.
        with db.engine.connect() as conn:
            conn.exec_driver_sql('PRAGMA wal_checkpoint(TRUNCATE)')
