"""The receptionist with a 1 s keepalive, so a half-open model socket is noticed within seconds."""


async def on_alerting(e):
    call = e.call
    call.answer()
    client = await OpenAI.Beta.createRealtimeAPIClient({"pingIntervalS": 1.0})
    client.sessionUpdate({"instructions": "Answer briefly.", "turn_detection": {"type": "server_vad", "silence_duration_ms": 400}})
    VoxEngine.sendMediaBetween(call, client)
    client.responseCreate({})
    client.addEventListener(OpenAI.Beta.RealtimeAPIEvents.InputAudioBufferSpeechStarted, lambda ev: client.clearMediaBuffer())
    call.addEventListener(CallEvents.Disconnected, lambda ev: VoxEngine.terminate())


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
