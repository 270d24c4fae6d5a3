"""Responses: planning what the script says, and running each response as a generator that
yields what it waits for (a deadline, synthesised speech), paced by `realtime_factor`."""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Generator
from typing import Any

from .config import (
    BYTES_PER_MS,
    SAMPLE_RATE,
    ClientError,
    validate_response_params,
)
from .engine_base import EngineBase
from .engine_state import (
    _SAY_INSTRUCTION,
    SpeechRequest,
    _AwaitSpeech,
    _Call,
    _chunks_of,
    _Content,
    _from_pcm16,
    _Item,
    _Response,
    _Say,
    _Until,
    _words,
)
from .script import Turn, render_followup

log = logging.getLogger("telephony_bridge.local_engine.session")


class ResponseScheduler(EngineBase):
    """One part of `EngineSession` (session.py), working on the session's state."""

    # ------------------------------------------------------------------ responses

    def _on_response_create(self, event: dict) -> None:
        self._check_event_keys(event, {"response"})
        params = validate_response_params(event.get("response"), self.dialect)
        if self._active is not None:
            raise ClientError(
                f"Conversation already has an active response in progress: {self._active.id}. Wait until the "
                f"response is finished before creating a new one.",
                "conversation_already_has_active_response",
            )
        self._create_response(params, event_id=event.get("event_id"))

    def _on_response_cancel(self, event: dict) -> None:
        self._check_event_keys(event, {"response_id"})
        wanted = event.get("response_id")
        if self._active is None or (wanted is not None and wanted != self._active.id):
            raise ClientError("Cancellation failed: no active response found", "response_cancel_not_active")
        self._stop_response(self._active, "cancelled", {"type": "cancelled", "reason": "client_cancelled"})

    def _plan(self, instructions: str | None) -> list[_Say | _Call]:
        """What this response will say and do, from the script (see script.py)."""
        if instructions:
            match = _SAY_INSTRUCTION.match(instructions)
            if match:
                return [_Say(match.group(1).strip().strip("\"'\u201c\u201d"))]
        for call_id, template in list(self._followups.items()):
            output = next(
                (item.output for item in self.items if item.type == "function_call_output" and item.call_id == call_id),
                None,
            )
            if output is not None:
                del self._followups[call_id]
                return [_Say(render_followup(template, output))]
        if self._turn_index < len(self.script.turns):
            turn: Turn = self.script.turns[self._turn_index]
            self._turn_index += 1
            plan: list[_Say | _Call] = []
            if turn.say:
                plan.append(_Say(turn.say))
            if turn.call is not None:
                plan.append(_Call(turn.call.name, turn.call.arguments_json(), turn.then))
            return plan
        return [_Say(self.script.fallback)]

    def _create_response(self, params: dict[str, Any], event_id: str | None) -> None:
        settings = self.settings
        if self.dialect == "ga":
            modalities = params.get("output_modalities")
            audio_params = (params.get("audio") or {}).get("output") or {}
            output_format = settings.output_format
            if "format" in audio_params:
                output_format = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}[
                    audio_params["format"]["type"]
                ]
            voice = audio_params.get("voice", self.session["audio"]["output"].get("voice"))
            max_tokens = params.get("max_output_tokens", self.session.get("max_output_tokens", "inf"))
            temperature = None
        else:
            modalities = params.get("modalities")
            output_format = params.get("output_audio_format", settings.output_format)
            voice = params.get("voice", self.session.get("voice"))
            max_tokens = params.get("max_response_output_tokens", self.session.get("max_response_output_tokens", "inf"))
            temperature = params.get("temperature", self.session.get("temperature"))
        audio_out = settings.audio_out if modalities is None else "audio" in modalities
        response = _Response(
            id=self._new_id("resp_"),
            plan=self._plan(params.get("instructions")),
            audio_out=audio_out,
            output_format=output_format,
            voice=voice,
            speed=settings.speed,
            in_conversation=params.get("conversation", "auto") != "none",
            metadata=params.get("metadata"),
            max_output_tokens=max_tokens,
            temperature=temperature,
        )
        self._active = response
        self.responses_created += 1
        self._emit("response.created", response=self._render_response(response, "in_progress"))
        response.flow = self._run(response)
        response.wait = None

    def _pump(self) -> None:
        """Run the active response's flow as far as the clock and the speech it waits for allow."""
        while self._active is not None:
            response = self._active
            wait = response.wait
            if isinstance(wait, _Until) and wait.at_ms > self._now:
                return
            if isinstance(wait, _AwaitSpeech):
                if wait.pcm is None:
                    return
                value: Any = wait.pcm
            else:
                value = None
            assert response.flow is not None
            try:
                response.wait = response.flow.send(value)
            except StopIteration:
                return
            except Exception:  # an engine bug: fail this response, not the session
                log.exception("local engine response %s failed", response.id)
                response.flow = None
                self._stop_response(
                    response,
                    "failed",
                    {
                        "type": "failed",
                        "error": {"type": "server_error", "code": "server_error", "message": "The response failed."},
                    },
                )
                return
            if isinstance(response.wait, _AwaitSpeech):
                request = response.wait.request
                if self._speak is not None:
                    try:
                        response.wait.pcm = self._speak(request.text, request.sample_rate, request.voice, request.speed)
                    except Exception as exc:
                        self._fail_speech(response, str(exc))
                        return
                else:
                    self._speech_requests.append(request)

    def _run(self, response: _Response) -> Generator[Any, Any, None]:
        for step in response.plan:
            if isinstance(step, _Say):
                yield from self._say(response, step.text)
            else:
                self._call(response, step)
        self._finish(response)

    def _open_output_item(self, response: _Response, item: _Item) -> None:
        item.response_id = response.id
        output_index = len(response.output)
        response.output.append(item)
        self._emit(
            "response.output_item.added",
            response_id=response.id,
            output_index=output_index,
            item=self._render_item(item),
        )
        if response.in_conversation:
            previous = self._append_item(item)
            rendered = self._render_item(item)
            if self.dialect == "ga":
                self._emit("conversation.item.added", previous_item_id=previous, item=rendered)
            else:
                self._emit("conversation.item.created", previous_item_id=previous, item=rendered)

    def _close_output_item(self, response: _Response, item: _Item, status: str) -> None:
        item.status = status
        item.response_id = None
        rendered = self._render_item(item)
        self._emit(
            "response.output_item.done",
            response_id=response.id,
            output_index=response.output.index(item),
            item=rendered,
        )
        if response.in_conversation and self.dialect == "ga":
            index = self._find(item.id)
            previous = self.items[index - 1].id if index else None
            self._emit("conversation.item.done", previous_item_id=previous, item=rendered)

    def _part_fields(self, response: _Response, item: _Item) -> dict[str, Any]:
        return {
            "response_id": response.id,
            "item_id": item.id,
            "output_index": response.output.index(item),
            "content_index": 0,
        }

    def _say(self, response: _Response, text: str) -> Generator[Any, Any, None]:
        kind = "audio" if response.audio_out else "text"
        content = _Content(kind=kind, audio_format=response.output_format)
        if kind == "audio":
            content.transcript = ""
        else:
            content.text = ""
        item = _Item(id=self._new_id("item_"), type="message", role="assistant", status="in_progress")
        self._open_output_item(response, item)
        item.content.append(content)
        response.open_item = item
        response.transcript_sent = ""
        fields = self._part_fields(response, item)
        empty_part = {"type": "audio", "transcript": ""} if kind == "audio" else {"type": "text", "text": ""}
        self._emit("response.content_part.added", **fields, part=empty_part)
        words = _words(text)
        if kind == "text":
            for word in words:
                response.transcript_sent += word
                content.text = response.transcript_sent
                self._emit(self._names["text_delta"], **fields, delta=word)
            self._emit(self._names["text_done"], **fields, text=text)
            self._emit("response.content_part.done", **fields, part={"type": "text", "text": text})
        else:
            sample_rate = SAMPLE_RATE[response.output_format]
            pcm = yield _AwaitSpeech(
                SpeechRequest(self._new_id("speech_"), text, sample_rate, self.script.voice, response.speed)
            )
            encoded = _from_pcm16(pcm, response.output_format)
            bytes_per_ms = BYTES_PER_MS[response.output_format]
            duration_ms = len(encoded) / bytes_per_ms
            # Each word is due when the audio reaches its share of the characters.
            starts, position = [], 0
            for word in words:
                starts.append(duration_ms * position / max(1, len(text)))
                position += len(word)
            start = self._now
            chunk_bytes = self.chunk_ms * bytes_per_ms
            next_word = 0
            for offset, chunk in _chunks_of(encoded, chunk_bytes):
                due = start + (offset / bytes_per_ms) / self.realtime_factor
                if due > self._now:
                    yield _Until(due)
                content.audio += chunk
                self._emit(self._names["audio_delta"], **fields, delta=base64.b64encode(chunk).decode())
                chunk_end_ms = (offset + len(chunk)) / bytes_per_ms
                while next_word < len(words) and starts[next_word] < chunk_end_ms:
                    self._send_word(response, content, fields, words[next_word])
                    next_word += 1
            for word in words[next_word:]:
                self._send_word(response, content, fields, word)
            end = start + duration_ms / self.realtime_factor
            if end > self._now:
                yield _Until(end)
            content.transcript = text
            self._emit(self._names["audio_done"], **fields)
            self._emit(self._names["transcript_done"], **fields, transcript=text)
            self._emit("response.content_part.done", **fields, part={"type": "audio", "transcript": text})
        response.open_item = None
        self._close_output_item(response, item, "completed")

    def _send_word(self, response: _Response, content: _Content, fields: dict[str, Any], word: str) -> None:
        response.transcript_sent += word
        content.transcript = response.transcript_sent
        self._emit(self._names["transcript_delta"], **fields, delta=word)

    def _call(self, response: _Response, call: _Call) -> None:
        call_id = self._new_id("call_")
        item = _Item(
            id=self._new_id("item_"),
            type="function_call",
            status="in_progress",
            call_id=call_id,
            name=call.name,
            arguments="",
        )
        self._open_output_item(response, item)
        fields = {
            "response_id": response.id,
            "item_id": item.id,
            "output_index": response.output.index(item),
            "call_id": item.call_id,
        }
        arguments = call.arguments
        piece = max(1, math.ceil(len(arguments) / 3))  # a few deltas, as a model streams tokens
        for offset in range(0, len(arguments), piece):
            self._emit("response.function_call_arguments.delta", **fields, delta=arguments[offset : offset + piece])
        item.arguments = arguments
        done = dict(fields, arguments=arguments)
        if self.dialect == "ga":
            done["name"] = call.name
        self._emit("response.function_call_arguments.done", **done)
        self._close_output_item(response, item, "completed")
        if call.followup is not None:
            self._followups[call_id] = call.followup

    def _finish(self, response: _Response) -> None:
        self._active = None
        self._emit("response.done", response=self._render_response(response, "completed", None, self._usage(response)))
        self._emit_rate_limits(response)

    def _stop_response(self, response: _Response, status: str, details: dict[str, Any]) -> None:
        """End the response in flight early (cancelled by the client or by turn detection, or failed)."""
        if response.flow is not None:
            response.flow.close()
        item = response.open_item
        if item is not None:
            fields = self._part_fields(response, item)
            content = item.content[0]
            if content.kind == "audio":
                self._emit(self._names["audio_done"], **fields)
                self._emit(self._names["transcript_done"], **fields, transcript=response.transcript_sent)
                self._emit(
                    "response.content_part.done",
                    **fields,
                    part={"type": "audio", "transcript": response.transcript_sent},
                )
            else:
                self._emit(self._names["text_done"], **fields, text=response.transcript_sent)
                self._emit(
                    "response.content_part.done", **fields, part={"type": "text", "text": response.transcript_sent}
                )
            response.open_item = None
            self._close_output_item(response, item, "incomplete")
        for output_item in response.output:
            output_item.response_id = None
        self._active = None
        self._emit("response.done", response=self._render_response(response, status, details, self._usage(response)))
        self._emit_rate_limits(response)

    def _usage(self, response: _Response) -> dict[str, Any]:
        """Plausible token counts (the engine has no tokenizer): ~4 characters per text token, audio at
        10 tokens per second of input and 20 per second of output."""
        text_in = len(self.session.get("instructions") or "") // 4
        audio_in = 0
        for item in self.items:
            if item.response_id is not None:
                continue
            for content in item.content:
                text_in += len(content.text or content.transcript or "") // 4
                if content.kind == "input_audio":
                    audio_in += len(content.audio) // BYTES_PER_MS[content.audio_format] // 100
            text_in += len(item.arguments or item.output or "") // 4
        text_out = audio_out = 0
        for item in response.output:
            text_out += len(item.arguments or "") // 4
            for content in item.content:
                text_out += max(1, len(content.text or content.transcript or "") // 4)
                if content.kind == "audio":
                    audio_out += len(content.audio) // BYTES_PER_MS[content.audio_format] // 50
        input_details: dict[str, Any] = {"text_tokens": text_in, "audio_tokens": audio_in, "cached_tokens": 0}
        if self.dialect == "ga":
            input_details["image_tokens"] = 0
            input_details["cached_tokens_details"] = {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}
        return {
            "total_tokens": text_in + audio_in + text_out + audio_out,
            "input_tokens": text_in + audio_in,
            "output_tokens": text_out + audio_out,
            "input_token_details": input_details,
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }

    def _emit_rate_limits(self, response: _Response) -> None:
        self._emit(
            "rate_limits.updated",
            rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {"name": "tokens", "limit": 400000, "remaining": 395000, "reset_seconds": 0.75},
            ],
        )
