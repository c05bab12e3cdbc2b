"""`make bench`: seed databases, serve them with gunicorn, load them with wrk.

    python -m benchmarks.run                  # SQLite 100k and 1M, PostgreSQL 1M
    python -m benchmarks.run --sizes 100000 --pg-sizes ''    # quick, SQLite only
    python -m benchmarks.run --reuse          # keep databases already seeded

Each run seeds through the models (1,000 users below 1,000,000 posts,
100,000 at and above; 50 follows each; plus `heavy`, following 2,000, when
there are enough users), serves the app with gunicorn (2 sync workers) next
to a trivial Flask app (the ceiling), and loads each page with wrk for
`--rounds` rounds of `--duration` seconds, pages interleaved, so a slow
minute of a noisy machine hits every page alike. Per run it prints req/s,
p50 and p99 (medians over the rounds), errors, ratios to the ceiling and to
anonymous /login, SQL statements per page and resident memory per worker;
then one table of targets, met or not.
"""

import argparse
import os
import statistics

import sqlalchemy as sa

from app import db
from app.testing import SMTPSink
from benchmarks.common import (
    RESULTS,
    ROOT,
    Browser,
    Gunicorn,
    app_env,
    ensure_wrk,
    form_post_script,
    local_app,
    login,
    lua_script,
    run_wrk,
)
from benchmarks.report import print_run, print_targets, statements_per_page
from benchmarks.seed import HEAVY, PASSWORD, seed

PG_URL = 'postgresql+psycopg://postgres@127.0.0.1:5432/bench'
HEAVY_FOLLOWS = 2_000
CEILING = 'trivial Flask (ceiling)'
LOGIN = 'anonymous GET /login'
HEAVY_PAGE = f'GET /index, following {HEAVY_FOLLOWS:,}'
# (row name, path, who): None is anonymous.
READS = [
    (LOGIN, '/login', None),
    ('GET /explore', '/explore', 'user0'),
    ('GET /explore?page=2000', '/explore?page=2000', 'user0'),
    ('GET /index', '/index', 'user0'),
    ('GET /user/user1', '/user/user1', 'user0'),
    (HEAVY_PAGE, '/index', HEAVY),
]


def users_for(posts: int) -> int:
    return 1_000 if posts < 1_000_000 else 100_000


def prepare(args, url: str, posts: int) -> tuple[object, str]:
    """The app on `url`, seeded for `posts` (or as found, with --reuse)."""
    users = args.users or users_for(posts)
    heavy = HEAVY_FOLLOWS if users > HEAVY_FOLLOWS else 0
    ensure_database(url)
    app = local_app(url)
    expected = users + (1 if heavy else 0), posts
    if args.reuse and counts(app) == expected:
        note = f'reused: {users:,} users, {posts:,} posts'
    else:
        seconds = seed(app, users, args.follows, posts, heavy_follows=heavy)
        note = f'seeded {users:,} users, {posts:,} posts in {seconds:.0f} s'
    return app, note


def counts(app) -> tuple[int, int]:
    try:
        with app.app_context():
            n = [
                db.session.scalar(sa.select(sa.func.count()).select_from(table))
                for table in (sa.table('user'), sa.table('post'))
            ]
            db.engine.dispose()
            return tuple(n)
    except sa.exc.DBAPIError:
        return (0, 0)


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` if it does not exist."""
    parsed = sa.make_url(url)
    if not parsed.drivername.startswith('postgresql'):
        return
    admin = sa.create_engine(
        parsed.set(database='postgres'), isolation_level='AUTOCOMMIT'
    )
    with admin.connect() as conn:
        exists = conn.scalar(
            sa.text('SELECT 1 FROM pg_database WHERE datname = :n'),
            {'n': parsed.database},
        )
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def postgres_reachable(url: str) -> bool:
    engine = sa.create_engine(sa.make_url(url).set(database='postgres'))
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def worker_memory_mib(master_pid: int) -> list[tuple[float, float]]:
    """(resident, anonymous) MiB of each gunicorn worker. Resident counts the
    pages of the SQLite file mapped in (mmap), which the OS shares; the
    anonymous part is the worker's own."""
    with open(f'/proc/{master_pid}/task/{master_pid}/children') as f:
        pids = f.read().split()
    sizes = []
    for pid in pids:
        with open(f'/proc/{pid}/smaps_rollup') as f:
            fields = dict(line.split()[:2] for line in f if line.endswith('kB\n'))
        sizes.append((int(fields['Rss:']) / 1024, int(fields['Anonymous:']) / 1024))
    return sorted(sizes)


def measure_reads(args, server, ceiling, reads) -> dict[str, dict]:
    """Interleaved rounds over every page; medians per page. A slow spell
    of a noisy machine lands on one round of every page alike, so report.py
    takes each ratio within a round, then the median over the rounds."""
    targets = [(CEILING, ceiling.url + '/', None)]
    for name, path, script in reads:
        targets.append((name, server.url + path, script))
    for _, url, script in targets:  # warm up: caches, first-request work
        run_wrk(url, 1, script)
    rounds = {name: [] for name, _, _ in targets}
    for _ in range(args.rounds):
        for name, url, script in targets:
            rounds[name].append(run_wrk(url, args.duration, script))
    return {name: median_result(results) for name, results in rounds.items()}


def median_result(results: list[dict]) -> dict:
    merged = {
        key: statistics.median(r[key] for r in results) for key in ('rps', 'p50', 'p99')
    }
    merged['errors'] = sum(r['errors'] for r in results)
    merged['requests'] = sum(r['requests'] for r in results)
    merged['rounds'] = results  # ratios are taken round by round
    return merged


def cookie_scripts(server, names: set[str]) -> dict[str, str]:
    scripts = {}
    for name in names:
        reader = login(server.url, name, PASSWORD)
        path = os.path.join(RESULTS, f'get-{name}.lua')
        scripts[name] = lua_script(path, cookie=reader.cookie_header())
    return scripts


def measure_writes(args, server, app, users: int) -> dict[str, dict]:
    results = {}
    writer = login(server.url, 'user0', PASSWORD)
    write = form_post_script(
        os.path.join(RESULTS, 'write.lua'),
        writer,
        '/index',
        '"post=bench+write+" .. counter .. "-" .. math.random(1000000000)',
    )
    before = counts(app)[1]
    writes = run_wrk(server.url + '/index', args.write_duration, write)
    writes['stored'] = counts(app)[1] - before
    results[f'POST /index ({args.write_duration} s of writes)'] = writes
    # Half the addresses belong to an account, half do not.
    email = f'"user" .. math.random(0, {2 * users - 1}) .. "%40example.com"'
    reset = form_post_script(
        os.path.join(RESULTS, 'reset.lua'),
        Browser(server.url),
        '/reset_password_request',
        f'"email=" .. {email}',
    )
    url = server.url + '/reset_password_request'
    results['POST /reset_password_request'] = run_wrk(url, args.duration, reset)
    return results


def benchmark(args, label: str, url: str, posts: int, smtp_port: int) -> dict:
    app, note = prepare(args, url, posts)
    users = counts(app)[0]
    print(f'\n{label}, {posts:,} posts: {note}', flush=True)
    has_heavy = users > HEAVY_FOLLOWS
    reads = [r for r in READS if has_heavy or r[0] != HEAVY_PAGE]
    sql = statements_per_page(app, [(name, path, who) for name, path, who in reads])
    with app.app_context():
        db.engine.dispose()
    ceiling_dir = os.path.join(ROOT, 'benchmarks')
    with (
        Gunicorn('ceiling:app', {}, cwd=ceiling_dir) as ceiling,
        Gunicorn('microblog:app', app_env(url, smtp_port)) as server,
    ):
        scripts = cookie_scripts(server, {who for _, _, who in reads if who})
        plan = [(name, path, scripts.get(who)) for name, path, who in reads]
        rss_start = worker_memory_mib(server.process.pid)
        rows = measure_reads(args, server, ceiling, plan)
        rss_end = worker_memory_mib(server.process.pid)
        rows.update(measure_writes(args, server, app, users))
    for name, count in sql.items():
        rows[name]['sql'] = count
    return {
        'label': f'{label} {posts:,}',
        'rows': rows,
        'rss': (rss_start, rss_end),
        'heavy': has_heavy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='100000,1000000', help='SQLite runs')
    parser.add_argument('--pg-sizes', default='1000000', help="'' for none")
    parser.add_argument('--pg-url', default=PG_URL)
    parser.add_argument('--users', type=int, help='default: by size, see above')
    parser.add_argument('--follows', type=int, default=50)
    parser.add_argument('--duration', type=int, default=4, help='seconds per round')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--write-duration', type=int, default=10)
    parser.add_argument('--reuse', action='store_true', help='skip seeding')
    args = parser.parse_args()
    ensure_wrk()
    os.makedirs(RESULTS, exist_ok=True)

    def sizes(text: str) -> list[int]:
        return [int(s) for s in text.split(',') if s.strip()]

    plan = [
        ('SQLite', f'sqlite:///{RESULTS}/bench-{posts}.db', posts)
        for posts in sizes(args.sizes)
    ]
    if sizes(args.pg_sizes) and not postgres_reachable(args.pg_url):
        print(f'\nPostgreSQL is not reachable at {args.pg_url}: its runs are skipped.')
    elif sizes(args.pg_sizes):
        plan += [('PostgreSQL', args.pg_url, posts) for posts in sizes(args.pg_sizes)]

    sink = SMTPSink().start()  # receives the reset emails
    try:
        runs = []
        for label, url, posts in plan:
            runs.append(benchmark(args, label, url, posts, sink.port))
            print_run(runs[-1], CEILING, LOGIN)
        print_targets(runs, CEILING, LOGIN, HEAVY_PAGE)
        print(f'\nReset emails received by the SMTP sink: {len(sink.messages)}')
    finally:
        sink.stop()


if __name__ == '__main__':
    main()
