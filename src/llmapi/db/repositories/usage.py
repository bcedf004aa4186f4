from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import cast

from sqlalchemy import Table, case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from llmapi.db.models import UsageRecord
from llmapi.db.types import utc_date


@dataclass(frozen=True, slots=True)
class UsageRecordData:
    """One served request, as the usage accountant hands it over."""

    at: datetime
    principal_id: str
    principal_kind: str
    model: str
    endpoint: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    status_code: int
    cached: bool = False


_COLUMNS = tuple(field.name for field in fields(UsageRecordData))
_INSERT = insert(cast(Table, UsageRecord.__table__))


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Usage for one UTC day and one model."""

    day: date
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached: int


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_many(self, records: Sequence[UsageRecordData]) -> None:
        """Store a batch with one INSERT statement, executed for all rows at once (executemany).

        Rows are built field by field: `dataclasses.asdict` deep-copies every value, which costs more than the
        insert itself."""
        if not records:
            return
        rows = [{name: getattr(record, name) for name in _COLUMNS} for record in records]
        await self._session.execute(_INSERT, rows)

    async def summary(
        self, *, principal_id: str | None, since: datetime | None, until: datetime | None
    ) -> list[UsageRow]:
        """Requests and tokens per UTC day and model in [since, until), oldest day first.

        `principal_id=None` sums over every principal; `since`/`until` None leave that side open.
        """
        day = utc_date(UsageRecord.at).label("day")
        query = (
            select(
                day,
                UsageRecord.model,
                func.count().label("requests"),
                func.sum(UsageRecord.prompt_tokens).label("prompt_tokens"),
                func.sum(UsageRecord.completion_tokens).label("completion_tokens"),
                func.sum(case((UsageRecord.cached, 1), else_=0)).label("cached"),
            )
            .group_by(day, UsageRecord.model)
            .order_by(day, UsageRecord.model)
        )
        if principal_id is not None:
            query = query.where(UsageRecord.principal_id == principal_id)
        if since is not None:
            query = query.where(UsageRecord.at >= since)
        if until is not None:
            query = query.where(UsageRecord.at < until)
        result = await self._session.execute(query)
        return [
            UsageRow(
                day=row.day,
                model=row.model,
                requests=int(row.requests),
                prompt_tokens=int(row.prompt_tokens),
                completion_tokens=int(row.completion_tokens),
                cached=int(row.cached),
            )
            for row in result
        ]
