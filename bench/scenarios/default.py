# The load benchmark's scenario (bench/load.py serves it with `--scenarios bench/scenarios`): answer,
# open one model client on the bench engine, and bridge media both ways — the minimal VoxEngine
# scenario. The call id rides in the model URL's query so the engine can file its timestamps per call.
# BENCH_CODEC=g711_ulaw (bench.load --bridge-codec g711_ulaw) has the model take μ-law as it comes:
# no resampling in the bridge, which isolates what the DSP costs.
import os

ENGINE_URL = os.environ.get("BENCH_ENGINE_URL") or os.environ.get("REALTIME_URL") or "ws://127.0.0.1:9/v1/realtime"
CODEC = os.environ.get("BENCH_CODEC") or "pcm16"
# BENCH_DIALECT=live (bench.load --dialect live): OpenAI.createLiveAPIClient on the engine's Live
# endpoint, μ-law 8 kHz both ways: pass-through, the input keeper, the Live output classifier.
DIALECT = os.environ.get("BENCH_DIALECT") or "realtime"
LIVE_URL = ENGINE_URL.replace("/v1/realtime", "/v1/live/sessions")
# BENCH_WEBRTC_URL (bench.load --transport webrtc): the Realtime client on `transport: "webrtc"`,
# its SDP offer to the bench engine's WebRTC endpoint (events on the data channel, audio on Opus).
WEBRTC_URL = os.environ.get("BENCH_WEBRTC_URL")


async def on_alerting(e):
    call = e.call
    call.answer()
    if DIALECT == "live":
        client = await OpenAI.createLiveAPIClient({"baseUrl": f"{LIVE_URL}?call={call.id()}", "apiKey": "bench"})
        client.sessionStart({"session": {"model": "gpt-live-1"}})
    elif WEBRTC_URL:
        client = await OpenAI.Beta.createRealtimeAPIClient(
            {"transport": "webrtc", "webrtcUrl": f"{WEBRTC_URL}?call={call.id()}&codec={CODEC}", "apiKey": "bench", "codec": CODEC}
        )
    else:
        client = await OpenAI.Beta.createRealtimeAPIClient(
            {"url": f"{ENGINE_URL}?call={call.id()}&codec={CODEC}", "apiKey": "bench", "codec": CODEC}
        )
    VoxEngine.sendMediaBetween(call, client)
    call.addEventListener(CallEvents.Disconnected, lambda ev: client.close())


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
