"""Receptionist on GPT-Live (OpenAI.createLiveAPIClient): greets first, tells the time through
Responses delegation, hangs up once the goodbye has played.

GPT-Live is full duplex: the model hears the caller while it talks and stops by itself, so the
scenario does nothing on caller speech (there is no speech_started). Phone audio goes to the model
as μ-law 8 kHz byte for byte. Tools are delegated: the model says `session.delegation.created`, the
Responses backend asks for a function in a nested `response.event`, and the answer goes back the
Live way, `responseItemCreate` (the function_call_output) then `responseCreate`.
The caller pressing `*` stops the agent at once (`clearMediaBuffer`): the bridge clears the
phone's audio and tells the model what the caller did not hear.
"""

import datetime
import json

INSTRUCTIONS = (
    "You are the receptionist of Acme. Be brief. Stop speaking when the caller interrupts. "
    "Delegate questions about the time; when the caller is done, say goodbye and delegate end_call."
)
TOOLS = [
    {"type": "function", "name": "get_current_time", "description": "The current time at Acme (UTC).",
     "parameters": {"type": "object", "properties": {}}},
    {"type": "function", "name": "end_call", "description": "Hang up after saying goodbye.",
     "parameters": {"type": "object", "properties": {}}},
]


async def on_call_alerting(e):
    call = e.call
    call.answer()
    client = await OpenAI.createLiveAPIClient({"apiKey": None})
    client.sessionStart({"session": {
        "model": "gpt-live-1",
        "instructions": INSTRUCTIONS,
        "audio": {"output": {"voice": "marin"}},
        "delegation": {"type": "responses", "responses": {"model": "gpt-5.6-terra", "tools": TOOLS, "tool_choice": "auto"}},
    }})
    VoxEngine.sendMediaBetween(call, client)
    call.handleTones(True)
    hang_up_after_turn = False

    def on_started(event):
        client.sessionInstructionsAppend({"content": "Greet the caller now.", "delegation_id": None})

    def on_response_event(event):
        nonlocal hang_up_after_turn
        nested = event.data["payload"]["event"]
        item = nested.get("item") or {}
        if nested.get("type") != "response.output_item.done" or item.get("type") != "function_call":
            return
        if item["name"] == "get_current_time":
            output = {"time": datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M")}
        else:
            output = {"ok": True}
            hang_up_after_turn = True
        Logger.write(f"tool {item['name']} -> {json.dumps(output)}")
        client.responseItemCreate({"item": {"type": "function_call_output", "call_id": item["call_id"], "output": json.dumps(output)}})
        client.responseCreate({})  # all calls answered: the backend goes on, the model speaks the result

    def on_stopped_speaking(event):
        payload = event.data["payload"]
        Logger.write(f"agent stopped: heard {payload['heardMs']} of {payload['durationMs']} ms, interrupted={payload['interrupted']}")

    def on_media_ended(event):
        if hang_up_after_turn:
            call.hangup()  # the goodbye has played to its end

    def on_tone(event):
        if event.tone == "*":
            client.clearMediaBuffer()

    def on_disconnected(event):
        client.sessionClose()
        VoxEngine.terminate()

    client.addEventListener(OpenAI.LiveAPIEvents.SessionStarted, on_started)
    client.addEventListener(OpenAI.LiveAPIEvents.ResponseEvent, on_response_event)
    client.addEventListener(OpenAI.LiveAPIEvents.AgentStoppedSpeaking, on_stopped_speaking)
    client.addEventListener(OpenAI.Beta.Events.WebSocketMediaEnded, on_media_ended)
    call.addEventListener(CallEvents.ToneReceived, on_tone)
    call.addEventListener(CallEvents.Disconnected, on_disconnected)


VoxEngine.addEventListener(AppEvents.CallAlerting, on_call_alerting)
