"""openai-realtime-api-beta's README, ported to a phone call with OpenAI.RealtimeClient.

The original (Node.js), as the library's README writes it:

    import { RealtimeClient } from '@openai/realtime-api-beta';

    const client = new RealtimeClient({ apiKey: process.env.OPENAI_API_KEY });

    // Can set parameters ahead of connecting, either separately or all at once
    client.updateSession({ instructions: 'You are a great, upbeat friend.' });
    client.updateSession({ voice: 'alloy' });
    client.updateSession({
      turn_detection: { type: 'none' }, // or 'server_vad'
      input_audio_transcription: { model: 'whisper-1' },
    });

    // Set up event handling
    client.on('conversation.updated', (event) => {
      const { item, delta } = event;
      const items = client.conversation.getItems();
    });

    client.addTool({ name: 'get_weather', description: '...', parameters: {...} },
      async ({ lat, lng, location }) => {
        const result = await fetch(`https://api.open-meteo.com/v1/forecast?latitude=${lat}&longitude=${lng}...`);
        return await result.json();
      });

    // in VAD mode, the user starts speaking: stop playback of the previous response
    client.on('conversation.interrupted', async () => {
      const trackSampleOffset = await wavStreamPlayer.interrupt();
      if (trackSampleOffset?.trackId) {
        const { trackId, offset } = trackSampleOffset;
        await client.cancelResponse(trackId, offset);
      }
    });

    // Connect to Realtime API
    await client.connect();

    // Send a item and triggers a generation
    client.sendUserMessageContent([{ type: 'input_text', text: `How are you?` }]);

What changes on a phone call, and nothing else does:
- The code runs when a call comes in (`AppEvents.CallAlerting`), with `OpenAI.RealtimeClient(...)`
  for `new RealtimeClient(...)`; `apiKey: None` uses the bridge's OPENAI_API_KEY (or its local engine).
- Turn detection is the server's VAD: on the phone there is no push-to-talk button.
- Audio: `VoxEngine.sendMediaBetween(call, client)` instead of a microphone and a WavStreamPlayer.
- Barge-in: the bridge is the player, so `client.cancelResponse(trackId)` needs no sample offset:
  playback stops at once and the answer is truncated at what the caller heard.
- The tool answers from a table here instead of fetching open-meteo (a test never reaches the internet).
"""

FORECASTS = {"Paris": {"temperature_2m": 18.5, "wind_speed_10m": 11.2}}

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Retrieves the weather for a given lat, lng coordinate pair. Specify a label for the location.",
    "parameters": {
        "type": "object",
        "properties": {
            "lat": {"type": "number", "description": "Latitude"},
            "lng": {"type": "number", "description": "Longitude"},
            "location": {"type": "string", "description": "Name of the location"},
        },
        "required": ["lat", "lng", "location"],
    },
}


async def get_weather(args):
    forecast = FORECASTS.get(args["location"], {"temperature_2m": None, "wind_speed_10m": None})
    return {"location": args["location"], "current": forecast}


async def onCallAlerting(event):
    call = event.call
    call.answer()

    client = OpenAI.RealtimeClient({"apiKey": None})
    client.updateSession({"instructions": "You are a great, upbeat friend."})
    client.updateSession({"voice": "alloy"})
    client.updateSession({
        "turn_detection": {"type": "server_vad"},
        "input_audio_transcription": {"model": "whisper-1"},
    })

    playing = {"track_id": None}  # the assistant item being spoken (the WavStreamPlayer's trackId)

    def on_updated(event):
        item, delta = event["item"], event["delta"]
        if item.get("role") == "assistant" and delta and "audio" in delta:
            playing["track_id"] = item["id"]

    client.on("conversation.updated", on_updated)
    client.addTool(WEATHER_TOOL, get_weather)

    async def on_interrupted():
        if playing["track_id"]:
            client.cancelResponse(playing["track_id"])  # the bridge knows what the caller heard
            playing["track_id"] = None

    client.on("conversation.interrupted", on_interrupted)

    def on_completed(event):
        item = event["item"]
        if item.get("role") == "assistant":
            Logger.info(f"assistant said: {item['formatted']['transcript']}")

    client.on("conversation.item.completed", on_completed)

    await client.connect()
    VoxEngine.sendMediaBetween(call, client)
    client.sendUserMessageContent([{"type": "input_text", "text": "How are you?"}])

    def on_disconnected(event):
        client.disconnect()
        VoxEngine.terminate()

    call.addEventListener(CallEvents.Disconnected, on_disconnected)


VoxEngine.addEventListener(AppEvents.CallAlerting, onCallAlerting)
