"""One APIRouter per resource; `ROUTERS`, every one, in the order the app mounts them."""

from llmapi.api.routes import (
    admin,
    chat,
    completions,
    embeddings,
    generate,
    health,
    me,
    metrics,
    models,
    oauth,
    responses,
    sentiment,
)
from llmapi.api.routing import Router

ROUTERS: tuple[Router, ...] = tuple(
    module.router
    for module in (
        health,
        metrics,
        models,
        chat,
        responses,
        completions,
        embeddings,
        generate,
        sentiment,
        me,
        admin,
        oauth,
    )
)
