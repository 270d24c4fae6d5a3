"""Barge-in probe: the canonical VoxEngine pattern — clearMediaBuffer() on speech started."""

from tests.integration.probe import PROBE


async def on_alerting(e):
    call = e.call
    call.answer()
    client = await OpenAI.Beta.createRealtimeAPIClient({"apiKey": "sk-test-secret-key", "dialect": call.customData().get("dialect", "ga")})
    VoxEngine.sendMediaBetween(call, client)
    client.addEventListener(OpenAI.Beta.RealtimeAPIEvents.InputAudioBufferSpeechStarted, lambda ev: client.clearMediaBuffer())
    client.addEventListener(OpenAI.Beta.Events.WebSocketMediaStarted, lambda ev: PROBE.record(call.id(), "media_started", ev.encoding))
    client.addEventListener(OpenAI.Beta.Events.WebSocketMediaEnded, lambda ev: PROBE.record(call.id(), "media_ended", ev.mediaInfo["duration"]))
    client.addEventListener(OpenAI.Beta.RealtimeAPIEvents.Error, lambda ev: PROBE.record(call.id(), "error", ev.data["error"].get("code")))
    PROBE.record(call.id(), "client", client)


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
