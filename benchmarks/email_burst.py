"""A burst of reset requests: threads, delivery and time to drain.

    python -m benchmarks.email_burst [--requests 500]

One app process (the Flask test client, SQLite file) and a real SMTP server
(aiosmtpd). Sends the requests back to back for as many accounts, samples
the process's thread count throughout, and waits for every email.
"""

import argparse
import os
import threading
import time

from app.testing import SMTPSink
from benchmarks.common import RESULTS, local_app
from benchmarks.seed import seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--requests', type=int, default=500)
    args = parser.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    sink = SMTPSink().start()
    url = f'sqlite:///{RESULTS}/email-burst.db'
    seed(local_app(url), users=args.requests, follows=1, posts=0)
    app = local_app(
        url, MAIL_SENDER_ENABLED=True, MAIL_SERVER='127.0.0.1', MAIL_PORT=sink.port
    )

    peak = threading.active_count()
    baseline = peak
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, threading.active_count())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    baseline += 1  # the sampler itself
    client = app.test_client()
    started = time.perf_counter()
    for i in range(args.requests):
        client.post('/reset_password_request', data={'email': f'user{i}@example.com'})
    accepted = time.perf_counter() - started
    sink.wait_for(args.requests, timeout=600)
    drained = time.perf_counter() - started
    done.set()
    app.extensions['outbox'].stop(timeout=10)
    sink.stop()

    print('\n| figure | value |\n|---|---:|')
    print(f'| reset requests | {args.requests} |')
    print(f'| emails delivered | {len(sink.messages)} |')
    print(f'| distinct recipients | {len({m["To"] for m in sink.messages})} |')
    print(f'| threads before / peak | {baseline} / {peak} |')
    print(f'| time to accept all requests | {accepted:.2f} s |')
    print(f'| time until the last email arrived | {drained:.2f} s |')


if __name__ == '__main__':
    main()
