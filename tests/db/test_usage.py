from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import func, select

from llmapi.db.database import Database
from llmapi.db.models import UsageRecord
from llmapi.db.repositories.usage import UsageRecordData, UsageRepository, UsageRow

DAY1 = datetime(2030, 3, 1, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
BASE = UsageRecordData(
    at=DAY1,
    principal_id="key-a",
    principal_kind="api_key",
    model="gpt2",
    endpoint="/v1/chat/completions",
    prompt_tokens=10,
    completion_tokens=5,
    latency_ms=12.5,
    status_code=200,
)
# 23:30 on March 1st in UTC-5 is 04:30 on March 2nd in UTC: it counts on day 2.
NEW_YORK_LATE = datetime(2030, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))

RECORDS = [
    replace(BASE, at=DAY1 + timedelta(hours=1)),
    replace(BASE, at=DAY1 + timedelta(hours=23, minutes=59), prompt_tokens=20, cached=True),
    replace(BASE, at=DAY1 + timedelta(hours=2), model="minilm", completion_tokens=0),
    replace(BASE, at=NEW_YORK_LATE, prompt_tokens=1, completion_tokens=1),
    replace(BASE, at=DAY2 + timedelta(hours=5), principal_id="key-b", prompt_tokens=100),
    replace(BASE, at=DAY2 + timedelta(days=1), principal_id="key-b"),
]


async def _stored(database: Database) -> None:
    async with database.session() as session:
        await UsageRepository(session).add_many(RECORDS)
        await UsageRepository(session).add_many([])


async def test_add_many_stores_every_record(database: Database) -> None:
    await _stored(database)

    async with database.session() as session:
        count = await session.scalar(select(func.count()).select_from(UsageRecord))
        cached = await session.scalar(select(func.count()).where(UsageRecord.cached.is_(True)))
        first = await session.scalar(select(UsageRecord).order_by(UsageRecord.id).limit(1))

    assert (count, cached) == (6, 1)
    assert first is not None and first.at == RECORDS[0].at and first.latency_ms == 12.5


async def test_add_many_stores_each_field_as_given(database: Database) -> None:
    async with database.session() as session:
        await UsageRepository(session).add_many(RECORDS)

    async with database.session() as session:
        stored = list(await session.scalars(select(UsageRecord).order_by(UsageRecord.id)))

    assert [{f.name: getattr(row, f.name) for f in fields(UsageRecordData)} for row in stored] == [
        {f.name: getattr(record, f.name) for f in fields(UsageRecordData)} for record in RECORDS
    ]


async def test_summary_groups_by_utc_day_and_model(database: Database) -> None:
    await _stored(database)

    async with database.session() as session:
        rows = await UsageRepository(session).summary(principal_id=None, since=None, until=None)

    assert rows == [
        UsageRow(date(2030, 3, 1), "gpt2", requests=2, prompt_tokens=30, completion_tokens=10, cached=1),
        UsageRow(date(2030, 3, 1), "minilm", requests=1, prompt_tokens=10, completion_tokens=0, cached=0),
        UsageRow(date(2030, 3, 2), "gpt2", requests=2, prompt_tokens=101, completion_tokens=6, cached=0),
        UsageRow(date(2030, 3, 3), "gpt2", requests=1, prompt_tokens=10, completion_tokens=5, cached=0),
    ]


async def test_summary_filters_by_principal_and_half_open_range(database: Database) -> None:
    await _stored(database)

    async with database.session() as session:
        repository = UsageRepository(session)
        for_b = await repository.summary(principal_id="key-b", since=None, until=None)
        day2_only = await repository.summary(principal_id=None, since=DAY2, until=DAY2 + timedelta(days=1))
        nobody = await repository.summary(principal_id="key-z", since=None, until=None)

    assert [(row.day, row.requests, row.prompt_tokens) for row in for_b] == [
        (date(2030, 3, 2), 1, 100),
        (date(2030, 3, 3), 1, 10),
    ]
    assert [(row.day, row.model, row.requests) for row in day2_only] == [(date(2030, 3, 2), "gpt2", 2)]
    assert nobody == []
