"""Chat completions: messages in, an assistant message (or a stream of deltas) out."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

from llmapi.backends.base import ChatMessage, ChatPrompt, ToolCall
from llmapi.protocol.chat import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChatDelta,
    ChatMessageIn,
    ToolCallDelta,
    ToolCallFunctionDelta,
)
from llmapi.protocol.common import Usage, logit_bias_pairs
from llmapi.services.forwarding import Forwarding
from llmapi.services.logprobs import chat_logprob_count, chat_logprobs
from llmapi.services.response_format import response_constraint
from llmapi.services.text_jobs import (
    GeneratedTexts,
    Generation,
    Job,
    SequenceResult,
    Transcript,
    choices,
    new_id,
    now,
)
from llmapi.services.tool_calls import ToolCallReader, read_answer
from llmapi.services.tool_choice import ToolPlan, tool_plan
from llmapi.services.tool_grammar import forced_calls
from llmapi.types import FinishReason

_PATH = "chat/completions"


def _document(request: ChatCompletionRequest, document: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return document if document is not None else request.model_dump(mode="json", exclude_unset=True)


def _jobs(request: ChatCompletionRequest, max_tokens: int, plan: ToolPlan) -> list[Job]:
    prompt = ChatPrompt(tuple(_message(m) for m in request.messages), tools=plan.tools)
    return choices(
        prompt,
        request,
        n=request.n,
        max_tokens=max_tokens,
        logprobs=chat_logprob_count(request),
        logit_bias=logit_bias_pairs(request.logit_bias),
        constraint=forced_calls(plan) or response_constraint(request.response_format),
    )


def _message(message: ChatMessageIn) -> ChatMessage:
    calls = tuple(
        ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
        for call in message.tool_calls or ()
    )
    return ChatMessage(
        role=message.role, content=message.text(), tool_calls=calls, tool_call_id=message.tool_call_id
    )


def _answer(result: SequenceResult, plan: ToolPlan) -> tuple[ChatCompletionMessage, FinishReason]:
    if not plan.tools:
        return ChatCompletionMessage(content=result.text), result.finish_reason
    read = read_answer(result.text, plan.names, parallel=plan.parallel)
    message = ChatCompletionMessage(content=read.content, tool_calls=read.tool_calls)
    return message, _finish_reason(result.finish_reason, called=bool(read.tool_calls))


def _finish_reason(finish_reason: FinishReason, *, called: bool) -> FinishReason:
    return "tool_calls" if called and finish_reason == "stop" else finish_reason


def _completion(model: str, texts: GeneratedTexts, plan: ToolPlan, *, logprobs: bool) -> ChatCompletion:
    answers = [_answer(r, plan) for r in texts.results]
    return ChatCompletion(
        id=new_id("chatcmpl"),
        created=now(),
        model=model,
        choices=[
            ChatChoice(
                index=i,
                message=message,
                logprobs=chat_logprobs(result.logprobs) if logprobs else None,
                finish_reason=finish_reason,
            )
            for i, (result, (message, finish_reason)) in enumerate(zip(texts.results, answers, strict=True))
        ],
        usage=Usage.of(texts.prompt_tokens, texts.completion_tokens),
    )


async def create_chat_completion(
    *,
    request: ChatCompletionRequest,
    generation: Generation | Forwarding,
    document: Mapping[str, Any] | None = None,
) -> ChatCompletion:
    """`document` is the request in its JSON form, as a passed-through request goes upstream (by default,
    the fields `request` was given)."""
    if isinstance(generation, Forwarding):
        body = await generation.answer(_PATH, _document(request, document))
        return ChatCompletion.model_validate_json(body)
    plan = tool_plan(request)
    texts = await generation.run(_jobs(request, generation.max_tokens, plan))
    return _completion(generation.model, texts, plan, logprobs=bool(request.logprobs))


async def stream_chat_completion(
    *,
    request: ChatCompletionRequest,
    generation: Generation | Forwarding,
    document: Mapping[str, Any] | None = None,
) -> AsyncGenerator[ChatCompletionChunk, None]:
    """Chunks as OpenAI sends them: a role delta per choice, content deltas, exactly one chunk with
    finish_reason per choice, then (with stream_options.include_usage) a usage chunk with no choices."""
    if isinstance(generation, Forwarding):
        async with aclosing(generation.stream(_PATH, _document(request, document))) as batches:
            async for batch in batches:
                for event in batch:
                    yield ChatCompletionChunk.model_validate_json(event)
        return
    include_usage = bool(request.stream_options and request.stream_options.include_usage)
    chunk_id, created = new_id("chatcmpl"), now()

    def chunk(choices: list[ChatChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=chunk_id, created=created, model=generation.model, choices=choices, usage=usage
        )

    plan = tool_plan(request)
    jobs = _jobs(request, generation.max_tokens, plan)
    transcript = Transcript(jobs)
    readers = [ToolCallReader(plan.names, parallel=plan.parallel) for _ in jobs] if plan.tools else None
    started = False
    async for index, piece in generation.stream(jobs):
        if not started:
            started = True
            for i in range(request.n):
                yield chunk([ChatChunkChoice(index=i, delta=ChatDelta(role="assistant", content=""))])
        transcript.add(index, piece)
        logprobs = chat_logprobs(piece.logprobs) if request.logprobs and piece.logprobs else None
        if readers is not None:
            if logprobs is not None:
                yield chunk([ChatChunkChoice(index=index, delta=ChatDelta(), logprobs=logprobs)])
            for delta in _read_deltas(readers[index], piece.text, final=piece.finish_reason is not None):
                yield chunk([ChatChunkChoice(index=index, delta=delta)])
            if piece.finish_reason:
                called = readers[index].calls > 0
                finish_reason = _finish_reason(piece.finish_reason, called=called)
                yield chunk([ChatChunkChoice(index=index, delta=ChatDelta(), finish_reason=finish_reason)])
        elif piece.text or piece.finish_reason or logprobs is not None:
            delta = ChatDelta(content=piece.text) if piece.text else ChatDelta()
            choice = ChatChunkChoice(
                index=index, delta=delta, logprobs=logprobs, finish_reason=piece.finish_reason
            )
            yield chunk([choice])
    if include_usage:
        yield chunk([], Usage.of(*transcript.tokens()))


def _read_deltas(reader: ToolCallReader, text: str, *, final: bool) -> list[ChatDelta]:
    """A piece's content and calls as OpenAI streams them: a call's first delta has its index, id, type,
    name and empty arguments; its arguments follow."""
    before = reader.calls
    pieces = reader.feed(text) + (reader.finish() if final else [])
    deltas: list[ChatDelta] = []
    for piece in pieces:
        if isinstance(piece, str):
            deltas.append(ChatDelta(content=piece))
            continue
        head = ToolCallFunctionDelta(name=piece.function.name, arguments="")
        deltas.append(
            ChatDelta(tool_calls=[ToolCallDelta(index=before, id=piece.id, type="function", function=head)])
        )
        arguments = ToolCallFunctionDelta(arguments=piece.function.arguments)
        deltas.append(ChatDelta(tool_calls=[ToolCallDelta(index=before, function=arguments)]))
        before += 1
    return deltas
