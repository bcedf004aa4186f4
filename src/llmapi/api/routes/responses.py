"""POST /v1/responses, GET and DELETE /v1/responses/{response_id} (scope `chat`, as chat completions)."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from llmapi.api.deps import InferenceDep, ResponseStoreDep
from llmapi.api.named_events import named_event_response
from llmapi.api.responses import answer, document, json_response
from llmapi.api.route_classes import AuthenticatedRoute
from llmapi.api.routing import Router
from llmapi.api.security import require
from llmapi.auth.scopes import Scope
from llmapi.protocol.responses import CreateResponseRequest, DeletedResponse, ModelResponse
from llmapi.services.responses import Turn, create_response, forwarding, stream_response

router = Router(
    prefix="/v1", tags=["responses"], route_class=AuthenticatedRoute, dependencies=[require(Scope.CHAT)]
)


# Its stream is not the chat completions' (`data:` lines, then [DONE]): documented here, kept by the
# document's error answers.
_EVENTS = {
    "schema": {
        "type": "object",
        "description": "With stream=true, server-sent events as OpenAI sends them: `event: {type}` and "
        "`data: {the event as JSON}`, from response.created to response.completed (or response.incomplete, "
        "or an `error` event); no [DONE].",
        "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
        "required": ["event", "data"],
    }
}


@router.post(
    "/responses",
    response_model=ModelResponse,
    summary="Create a model response",
    responses={200: {"content": {"text/event-stream": _EVENTS}}},
)
async def create(
    body: CreateResponseRequest, request: Request, inference: InferenceDep, store: ResponseStoreDep
) -> Response:
    if (upstream := await forwarding(inference, body)) is not None:
        if body.stream:
            return await named_event_response(upstream.stream("responses", document(request)))
        return await answer(request, upstream.answer("responses", document(request)))
    turn = Turn.of(body, await store.conversation(body.previous_response_id))
    generation = await inference.generation("chat", turn.chat)
    if body.stream:
        return await named_event_response(stream_response(turn=turn, generation=generation, store=store))
    return await answer(request, create_response(turn=turn, generation=generation, store=store))


@router.get("/responses/{response_id}", response_model=ModelResponse, summary="Retrieve a stored response")
async def retrieve(response_id: str, store: ResponseStoreDep) -> Response:
    return json_response(await store.get(response_id))


@router.delete("/responses/{response_id}", response_model=DeletedResponse, summary="Delete a stored response")
async def delete(response_id: str, store: ResponseStoreDep) -> Response:
    return json_response(await store.delete(response_id))
