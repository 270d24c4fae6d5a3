"""Receptionist: greets first, lets the caller barge in, tells the time, hangs up after goodbye.

Runs once per call in its own namespace (like a VoxEngine script): `VoxEngine`, `OpenAI`,
`AppEvents`, `CallEvents` and `Logger` are this call's. Module-level names are per call too.
"""

import datetime
import json

INSTRUCTIONS = (
    "You are the receptionist of Acme. Greet the caller, be brief. You can tell the time with "
    "get_current_time. When the caller is done, say goodbye and call end_call."
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
    client = await OpenAI.Beta.createRealtimeAPIClient({})
    client.sessionUpdate({
        "instructions": INSTRUCTIONS,
        "voice": "alloy",
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500, "interrupt_response": True},
        "input_audio_transcription": {"model": "whisper-1"},
        "tools": TOOLS,
        "tool_choice": "auto",
    })
    VoxEngine.sendMediaBetween(call, client)
    client.responseCreate({})  # the agent speaks first
    hangup_when_played = False
    playing = False

    def on_speech_started(event):
        client.clearMediaBuffer()  # barge-in: stop playback, truncate at what the caller heard

    def on_function_call(event):
        nonlocal hangup_when_played
        data = event.data
        if data["name"] == "get_current_time":
            output = {"time": datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M")}
            client.conversationItemCreate(None, {"type": "function_call_output", "call_id": data["call_id"], "output": json.dumps(output)})
            client.responseCreate({})
        elif data["name"] == "end_call":
            if playing:
                hangup_when_played = True  # the goodbye is still playing: hang up once its last mark is back
            else:
                call.hangup()

    def on_media_started(event):
        nonlocal playing
        playing = True

    def on_media_ended(event):
        nonlocal playing
        playing = False
        if hangup_when_played:
            call.hangup()

    def on_disconnected(event):
        client.close()
        VoxEngine.terminate()

    client.addEventListener(OpenAI.Beta.RealtimeAPIEvents.InputAudioBufferSpeechStarted, on_speech_started)
    client.addEventListener(OpenAI.Beta.RealtimeAPIEvents.ResponseFunctionCallArgumentsDone, on_function_call)
    client.addEventListener(OpenAI.Beta.Events.WebSocketMediaStarted, on_media_started)
    client.addEventListener(OpenAI.Beta.Events.WebSocketMediaEnded, on_media_ended)
    call.addEventListener(CallEvents.Disconnected, on_disconnected)


VoxEngine.addEventListener(AppEvents.CallAlerting, on_call_alerting)
