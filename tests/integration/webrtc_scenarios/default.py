"""A GA client on `transport: "webrtc"`: greets first, barges in on caller speech (the canonical
VoxEngine pattern), and logs what the data channel brought."""


async def on_alerting(e):
    call = e.call
    call.answer()
    client = await OpenAI.createRealtimeAPIClient({"apiKey": "sk-test-webrtc", "transport": "webrtc"})
    client.sessionUpdate({"session": {"type": "realtime", "instructions": "Be brief.",
                                      "audio": {"output": {"voice": "marin"}}}})
    VoxEngine.sendMediaBetween(call, client)
    client.responseCreate({})

    def barge_in(event):
        Logger.write("===BARGE_IN===")
        client.clearMediaBuffer()

    client.addEventListener(OpenAI.RealtimeAPIEvents.InputAudioBufferSpeechStarted, barge_in)
    call.addEventListener(CallEvents.Disconnected, lambda ev: (client.close(), VoxEngine.terminate()))


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
