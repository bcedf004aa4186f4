from __future__ import annotations

from fastapi import Request
from starlette.responses import JSONResponse

from llmapi.api.deps import RegistryDep
from llmapi.api.routing import Router
from llmapi.shared_redis import SharedRedis

router = Router(prefix="/health", tags=["health"])


@router.get("/live", summary="The process is up")
async def live() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get(
    "/ready",
    summary="Every model is loaded (503 until then); `redis` says whether the shared Redis answers",
    responses={503: {"description": "The models are still loading (the same body, status `loading`)."}},
)
async def ready(request: Request, registry: RegistryDep) -> JSONResponse:
    status = "ready" if registry.ready else "loading"
    shared_redis: SharedRedis | None = request.app.state.shared_redis
    redis = "not configured"
    if shared_redis is not None:
        redis = "ok" if await shared_redis.answers() else "degraded"
    return JSONResponse(
        {"status": status, "models": registry.status(), "redis": redis},
        status_code=200 if registry.ready else 503,
    )
