"""The Agents SDK's OpenAIRealtimeWebRTC transport on a phone call: connect, play to the call, greet
first; the transport interrupts itself when the caller speaks (the bridge's barge-in)."""


async def on_alerting(e):
    call = e.call
    call.answer()
    transport = OpenAI.RealtimeWebRTC()
    transport.on("audio_interrupted", lambda: Logger.write("===INTERRUPTED==="))
    transport.on("audio_start", lambda: Logger.write("===AUDIO_START==="))
    await transport.connect({"apiKey": "sk-test-webrtc", "model": "gpt-realtime-2.1",
                             "initialSessionConfig": {"instructions": "Be brief.", "audio": {"output": {"voice": "marin"}}}})
    Logger.write(f"===STATE=== {transport.connection_state['status']}")
    VoxEngine.sendMediaBetween(call, transport)
    transport.send_event({"type": "response.create"})
    call.addEventListener(CallEvents.Disconnected, lambda ev: (transport.close(), VoxEngine.terminate()))


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
