"""A streamed answer as the Responses API's events, in OpenAI's order: the response created and in progress;
each output item added, its text or arguments in pieces, done; the response completed (or incomplete).
Every event is numbered, from 0."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from llmapi.protocol.response_events import (
    ArgumentsDeltaEvent,
    ArgumentsDoneEvent,
    ContentPartEvent,
    LifecycleEvent,
    OutputItemEvent,
    ResponseEvent,
    TextDeltaEvent,
    TextDoneEvent,
)
from llmapi.protocol.responses import (
    FunctionCall,
    ItemStatus,
    ModelResponse,
    OutputItem,
    OutputMessage,
    OutputText,
    ResponseUsage,
)
from llmapi.services.response_translation import new_id, status_of
from llmapi.types import FinishReason


@dataclass(slots=True)
class _Open:
    """The output item being streamed: where it is in the output, and its text or arguments so far."""

    item: OutputMessage | FunctionCall
    output_index: int
    pieces: list[str] = field(default_factory=list)
    call_index: int | None = None  # which of the answer's tool calls it is


class ResponseEvents:
    """Feed it the pieces of the answer as they come (`text`, `tool_call`), then `finish`. Each call gives
    the events to send. `response` is the response in progress: no output yet."""

    def __init__(self, response: ModelResponse) -> None:
        self._response = response
        self._sequence = -1
        self._items: list[OutputItem] = []
        self._open: _Open | None = None

    @property
    def sequence_number(self) -> int:
        """The last event's number."""
        return self._sequence

    def start(self) -> list[ResponseEvent]:
        return [
            self._lifecycle("response.created", self._response),
            self._lifecycle("response.in_progress", self._response),
        ]

    def text(self, delta: str) -> list[ResponseEvent]:
        events: list[ResponseEvent] = []
        if self._open is None or not isinstance(self._open.item, OutputMessage):
            events += [*self._close("completed"), *self._open_message()]
        current = self._current()
        current.pieces.append(delta)
        events.append(
            TextDeltaEvent(
                sequence_number=self._next(),
                item_id=current.item.id,
                output_index=current.output_index,
                content_index=0,
                delta=delta,
            )
        )
        return events

    def tool_call(
        self, index: int, call_id: str | None, name: str | None, arguments: str | None
    ) -> list[ResponseEvent]:
        """A piece of the answer's tool call `index`: its first piece names it, the rest add arguments."""
        events: list[ResponseEvent] = []
        if self._open is None or self._open.call_index != index:
            events += self._close("completed")
            call = FunctionCall(
                id=new_id("fc"), status="in_progress", arguments="", call_id=call_id or "", name=name or ""
            )
            self._open = _Open(call, output_index=len(self._items), call_index=index)
            self._items.append(call)
            events.append(self._item_event("response.output_item.added", call, self._open.output_index))
        current = self._current()
        item = current.item
        if isinstance(item, FunctionCall) and ((call_id and not item.call_id) or (name and not item.name)):
            current.item = item.model_copy(
                update={"call_id": item.call_id or call_id, "name": item.name or name}
            )
        if arguments:
            current.pieces.append(arguments)
            events.append(
                ArgumentsDeltaEvent(
                    sequence_number=self._next(),
                    item_id=item.id,
                    output_index=current.output_index,
                    delta=arguments,
                )
            )
        return events

    def finish(
        self, finish_reason: FinishReason | None, usage: ResponseUsage | None
    ) -> tuple[list[ResponseEvent], ModelResponse]:
        """The closing events, and the response as it ends (what the last of them carries). An answer with
        no output at all is an empty message, as the whole answer would have it."""
        status, incomplete = status_of(finish_reason)
        events = [] if self._items else self._open_message()
        events += self._close("incomplete" if status == "incomplete" else "completed")
        response = self._response.model_copy(
            update={
                "status": status,
                "incomplete_details": incomplete,
                "output": list(self._items),
                "usage": usage,
                "completed_at": int(time.time()) if status == "completed" else None,
            }
        )
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [*events, self._lifecycle(kind, response)], response

    def _current(self) -> _Open:
        if self._open is None:
            raise RuntimeError("no output item is open")
        return self._open

    def _open_message(self) -> list[ResponseEvent]:
        message = OutputMessage(id=new_id("msg"), status="in_progress", content=[])
        self._open = _Open(message, output_index=len(self._items))
        self._items.append(message)
        index = self._open.output_index
        return [
            self._item_event("response.output_item.added", message, index),
            self._part_event("response.content_part.added", message.id, index, ""),
        ]

    def _close(self, status: ItemStatus) -> list[ResponseEvent]:
        current, self._open = self._open, None
        if current is None:
            return []
        whole, index, item = "".join(current.pieces), current.output_index, current.item
        if isinstance(item, FunctionCall):
            call = item.model_copy(update={"status": "completed", "arguments": whole})
            self._items[index] = call
            return [
                ArgumentsDoneEvent(
                    sequence_number=self._next(),
                    item_id=call.id,
                    output_index=index,
                    name=call.name,
                    arguments=whole,
                ),
                self._item_event("response.output_item.done", call, index),
            ]
        message = OutputMessage(id=item.id, status=status, content=[OutputText(text=whole)])
        self._items[index] = message
        return [
            TextDoneEvent(
                sequence_number=self._next(), item_id=item.id, output_index=index, content_index=0, text=whole
            ),
            self._part_event("response.content_part.done", item.id, index, whole),
            self._item_event("response.output_item.done", message, index),
        ]

    def _lifecycle(self, kind: str, response: ModelResponse) -> LifecycleEvent:
        return LifecycleEvent.model_validate(
            {"type": kind, "sequence_number": self._next(), "response": response}
        )

    def _item_event(self, kind: str, item: OutputItem, index: int) -> OutputItemEvent:
        return OutputItemEvent.model_validate(
            {"type": kind, "sequence_number": self._next(), "output_index": index, "item": item}
        )

    def _part_event(self, kind: str, item_id: str, index: int, text: str) -> ContentPartEvent:
        return ContentPartEvent.model_validate(
            {
                "type": kind,
                "sequence_number": self._next(),
                "item_id": item_id,
                "output_index": index,
                "content_index": 0,
                "part": OutputText(text=text),
            }
        )

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence
