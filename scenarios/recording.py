"""Voximplant's call-recording example, with an OpenAI agent, ported from VoxEngine JavaScript.

The original (written from Voximplant's `call.record` reference: `stereo: true` puts the caller on
the left and what the caller hears on the right; `RecordStarted` carries the URL, `RecordStopped`
the URL and the duration, after `Disconnected`):

    require(Modules.OpenAI);

    VoxEngine.addEventListener(AppEvents.CallAlerting, async ({call}) => {
      let realtimeAPIClient = undefined;

      call.addEventListener(CallEvents.Connected, () => {
        call.record({stereo: true});
      });
      call.addEventListener(CallEvents.RecordStarted, (event) => {
        Logger.write(`===RECORD_STARTED=== ${event.url}`);
      });
      call.addEventListener(CallEvents.RecordStopped, (event) => {
        Logger.write(`===RECORD_STOPPED=== ${event.url} ${event.duration} s ${event.error || ""}`);
      });
      call.addEventListener(CallEvents.Disconnected, () => {
        if (realtimeAPIClient) realtimeAPIClient.close();
        VoxEngine.terminate();
      });

      call.answer();

      realtimeAPIClient = await OpenAI.Beta.createRealtimeAPIClient({
        apiKey: OPENAI_API_KEY,
        model: "gpt-realtime",
      });
      realtimeAPIClient.sessionUpdate({
        instructions: "You are the assistant of Acme. Say that this call is recorded, then help. Be brief.",
        voice: "alloy",
        turn_detection: {type: "server_vad", silence_duration_ms: 500},
      });
      VoxEngine.sendMediaBetween(call, realtimeAPIClient);
      realtimeAPIClient.responseCreate({});

      realtimeAPIClient.addEventListener(OpenAI.Beta.RealtimeAPIEvents.InputAudioBufferSpeechStarted, () => {
        realtimeAPIClient.clearMediaBuffer();  // barge-in: the recording's right channel is cut here too
      });
    });

`RecordStopped` comes after `Disconnected`: the bridge finishes the file while the session ends
(within its 2 s grace for last handlers), so it fires even though `Disconnected` terminated the
session. With an `error` (the disk failed, RECORDINGS_DIR is not writable) it may come in the
middle of the call, which goes on without the recording.

In the port `Logger.write` stays (the bridge's Logger has it), arrow functions become `def`s, and
`apiKey: None` uses the bridge's `OPENAI_API_KEY`, or the embedded local engine without one. The
recording is written to RECORDINGS_DIR and served at its URL to holders of an API_KEYS key.
"""

OPENAI_API_KEY = None
INSTRUCTIONS = "You are the assistant of Acme. Say that this call is recorded, then help. Be brief."


async def onCallAlerting(event):
    call = event.call
    realtimeAPIClient = None

    def onConnected(event):
        call.record({"stereo": True})

    def onRecordStarted(event):
        Logger.write(f"===RECORD_STARTED=== {event.url}")

    def onRecordStopped(event):
        Logger.write(f"===RECORD_STOPPED=== {event.url} {event.duration} s {event.get('error') or ''}".rstrip())

    def onDisconnected(event):
        if realtimeAPIClient: realtimeAPIClient.close()
        VoxEngine.terminate()

    call.addEventListener(CallEvents.Connected, onConnected)
    call.addEventListener(CallEvents.RecordStarted, onRecordStarted)
    call.addEventListener(CallEvents.RecordStopped, onRecordStopped)
    call.addEventListener(CallEvents.Disconnected, onDisconnected)

    call.answer()

    realtimeAPIClient = await OpenAI.Beta.createRealtimeAPIClient({
        "apiKey": OPENAI_API_KEY,
        "model": "gpt-realtime",
    })
    realtimeAPIClient.sessionUpdate({
        "instructions": INSTRUCTIONS,
        "voice": "alloy",
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
    })
    VoxEngine.sendMediaBetween(call, realtimeAPIClient)
    realtimeAPIClient.responseCreate({})

    def onSpeechStarted(event):
        realtimeAPIClient.clearMediaBuffer()

    realtimeAPIClient.addEventListener(OpenAI.Beta.RealtimeAPIEvents.InputAudioBufferSpeechStarted, onSpeechStarted)


VoxEngine.addEventListener(AppEvents.CallAlerting, onCallAlerting)
