"""The softphone tests' scenario: default.py's greeting and barge-in, and a key that hangs up.

Pressing 5 hangs up from the ToneReceived handler, so a call that ends that way shows the key
reached the scenario (not just the bridge's journal)."""

CALLS = []


async def on_call_alerting(e):
    call = e.call
    call.answer()
    call.handleTones(True)
    client = await OpenAI.Beta.createRealtimeAPIClient({})
    client.sessionUpdate(
        {
            "voice": "alloy",
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500, "interrupt_response": True},
            "input_audio_transcription": {"model": "whisper-1"},
        }
    )
    VoxEngine.sendMediaBetween(call, client)
    client.responseCreate({})

    def on_speech_started(event):
        client.clearMediaBuffer()

    def on_tone(event):
        Logger.write(f"tone {event.tone}")
        if event.tone == "5":
            call.hangup()

    def on_disconnected(event):
        client.close()
        VoxEngine.terminate()

    client.addEventListener(OpenAI.Beta.RealtimeAPIEvents.InputAudioBufferSpeechStarted, on_speech_started)
    call.addEventListener(CallEvents.ToneReceived, on_tone)
    call.addEventListener(CallEvents.Disconnected, on_disconnected)


VoxEngine.addEventListener(AppEvents.CallAlerting, on_call_alerting)
