"""Reset-request timing for known, unknown and throttled addresses.

    python -m benchmarks.reset_timing [--requests 50]

Serves the app with gunicorn (2 workers, SQLite, a local SMTP sink) and
sends the three kinds of request interleaved, one at a time, timing each
from the client. Prints median and p90 per kind and the ratio of medians.
"""

import argparse
import os
import statistics
import time

from app.testing import SMTPSink
from benchmarks.common import RESULTS, Browser, Gunicorn, app_env, local_app
from benchmarks.seed import seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--requests', type=int, default=50)
    args = parser.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    url = f'sqlite:///{RESULTS}/reset-timing.db'
    seed(local_app(url), users=2 * args.requests + 1, follows=1, posts=0)

    sink = SMTPSink().start()
    times: dict[str, list[float]] = {'known': [], 'unknown': [], 'throttled': []}
    try:
        with Gunicorn('microblog:app', app_env(url, sink.port)) as server:
            client = Browser(server.url)
            token = client.csrf_token('/reset_password_request')
            # user0 is asked for once first, so later requests are throttled.
            client.post('/reset_password_request', {'csrf_token': token,
                        'email': 'user0@example.com'})  # fmt: skip
            time.sleep(1)
            for i in range(1, args.requests + 1):
                for kind, email in (
                    ('known', f'user{i}@example.com'),
                    ('unknown', f'nobody{i}@example.com'),
                    ('throttled', 'user0@example.com'),
                ):
                    data = {'csrf_token': token, 'email': email}
                    start = time.perf_counter()
                    client.post('/reset_password_request', data)
                    times[kind].append((time.perf_counter() - start) * 1000)
            sink.wait_for(args.requests + 1, timeout=60)
    finally:
        sink.stop()

    known = statistics.median(times['known'])
    print(f'\n{args.requests} requests of each kind, interleaved, one at a time\n')
    print('| address | median ms | p90 ms | median / known |')
    print('|---|---:|---:|---:|')
    for kind, values in times.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        median = statistics.median(values)
        print(f'| {kind} | {median:.2f} | {p90:.2f} | {median / known:.2f} |')
    print(f'\nEmails received: {len(sink.messages)} (one per known account)')


if __name__ == '__main__':
    main()
