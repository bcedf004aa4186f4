from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from llmapi.api.deps import RegistryDep

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="The process is up")
async def live() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/ready", summary="Every model is loaded (503 until then)")
async def ready(registry: RegistryDep) -> JSONResponse:
    status = "ready" if registry.ready else "loading"
    return JSONResponse(
        {"status": status, "models": registry.status()}, status_code=200 if registry.ready else 503
    )
