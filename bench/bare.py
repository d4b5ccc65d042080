"""The bare floor for ingest: FastAPI + asyncpg, one INSERT per POST, nothing else.

It answers what one signed, validated, exactly-once CAD event costs above the least a Python
web service on this stack can do with a request that must be durable before its answer.
Run by bench/ingest_vs_bare.py beside corespond on the same database:

    BARE_DATABASE_URL=postgresql://... uvicorn bench.bare:app --port 8011
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

POOL: dict[str, asyncpg.Pool] = {}


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["BARE_DATABASE_URL"], min_size=4, max_size=16)
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_event "
            "(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body jsonb NOT NULL)"
        )
    POOL["db"] = pool
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/events", status_code=202)
async def events(request: Request) -> JSONResponse:
    body = await request.body()
    async with POOL["db"].acquire() as conn:
        row = await conn.fetchval(
            "INSERT INTO bench_event (body) VALUES ($1::jsonb) RETURNING id", body.decode()
        )
    return JSONResponse({"id": row}, status_code=202)
