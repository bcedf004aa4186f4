"""The ceiling: a bare FastAPI app whose POST returns a fixed JSON body (no middleware, no dependencies).

BENCH_CEILING_BODY_FILE=body.json uvicorn bench.gateway.ceiling:app
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response

BODY = Path(os.environ["BENCH_CEILING_BODY_FILE"]).read_bytes()

app = FastAPI()


@app.post("/v1/chat/completions")
async def chat_completions() -> Response:
    return Response(BODY, media_type="application/json")
