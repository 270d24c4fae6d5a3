"""A GPT-Live client on `transport: "webrtc"`: the session's config goes with the SDP offer; greets
first; phone audio as μ-law 8 kHz on the Opus track."""


async def on_alerting(e):
    call = e.call
    call.answer()
    client = await OpenAI.createLiveAPIClient({"apiKey": None, "transport": "webrtc"})
    client.sessionStart({"session": {"model": "gpt-live-1", "instructions": "Be brief.", "audio": {"output": {"voice": "marin"}}}})
    VoxEngine.sendMediaBetween(call, client)

    def on_started(event):
        Logger.write("===LIVE_STARTED===")
        client.sessionInstructionsAppend({"content": "Greet the caller now.", "delegation_id": None})

    client.addEventListener(OpenAI.LiveAPIEvents.SessionStarted, on_started)
    call.addEventListener(CallEvents.Disconnected, lambda ev: (client.close(), VoxEngine.terminate()))


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
