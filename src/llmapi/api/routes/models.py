from __future__ import annotations

from starlette.responses import Response

from llmapi.api.deps import RegistryDep
from llmapi.api.responses import json_response
from llmapi.api.route_classes import AuthenticatedRoute
from llmapi.api.routing import Router
from llmapi.api.security import require
from llmapi.auth.scopes import Scope
from llmapi.backends.base import ModelCard
from llmapi.protocol.models import Model, ModelList
from llmapi.serialization.messages import protobuf

router = Router(
    prefix="/v1", tags=["models"], dependencies=[require(Scope.MODELS_READ)], route_class=AuthenticatedRoute
)


def _model(card: ModelCard) -> Model:
    return Model(
        id=card.id,
        created=card.created,
        owned_by=card.owned_by,
        task=card.task,
        context_length=card.context_length,
        description=card.description,
        family=card.family,
        parameters=card.parameters,
    )


@router.get(
    "/models",
    response_model=ModelList,
    summary="List the served models",
    openapi_extra=protobuf(response="ModelList"),
)
async def list_models(registry: RegistryDep) -> Response:
    return json_response(ModelList(data=[_model(card) for card in registry.cards()]))


@router.get(
    "/models/{model_id:path}",
    response_model=Model,
    summary="Describe one model",
    openapi_extra=protobuf(response="Model"),
)
async def retrieve_model(model_id: str, registry: RegistryDep) -> Response:
    return json_response(_model(registry.card(model_id)))
