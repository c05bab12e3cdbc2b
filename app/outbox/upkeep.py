"""Periodic work features hand to the mail worker, which already wakes up
every UPKEEP_EVERY seconds in every deployment (app.outbox.sender): the
engine runs each registered task without knowing what it does."""

from collections.abc import Callable

from flask import Flask

from app.extensions import db

_tasks: list[Callable[[], None]] = []


def task(func: Callable[[], None]) -> Callable[[], None]:
    """Register `func` to run at each upkeep, inside the app context."""
    _tasks.append(func)
    return func


def run(app: Flask) -> None:
    """Run every task; one that fails is logged and rolled back, and the
    others (and the sending) go on."""
    for func in _tasks:
        try:
            func()
        except Exception:
            db.session.rollback()
            app.logger.exception('upkeep task %s failed', func.__name__)
