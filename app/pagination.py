"""Pagination without COUNT(*): fetch one extra row to know if there is more."""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app import db


@dataclass
class Page:
    items: list[Any]
    page: int
    per_page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def next_num(self) -> int | None:
        return self.page + 1 if self.has_next else None

    @property
    def prev_num(self) -> int | None:
        return self.page - 1 if self.has_prev else None


def paginate(query: sa.Select, page: int, per_page: int) -> Page:
    page = max(1, page)
    rows = list(
        db.session.scalars(query.limit(per_page + 1).offset((page - 1) * per_page))
    )
    return Page(rows[:per_page], page, per_page, len(rows) > per_page)
