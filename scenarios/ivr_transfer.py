"""Keypad menu with a human transfer: press 0 for a person, any other key is told to the agent.

The agent greets first and the caller may interrupt it (barge-in), as in default.py. Keys need
`call.handleTones(True)`; then every key fires `CallEvents.ToneReceived`:

- "0": the agent stops talking and the call is transferred to HUMAN_NUMBER (`call.transferTo`, a
  REST update of the live call with <Dial>). `TransferComplete` means the carrier took the call
  over, so the agent leaves; `TransferFailed` (for instance when the bridge has no Twilio
  credentials) is explained to the caller by the agent, and the conversation goes on.
- any other key is added to the conversation as a user message ("The caller pressed 1") and the
  agent answers it.

A key pressed while the agent is talking cuts it off first. The new answer is requested only once
the old one is cancelled and its playback cleared, so the model never sees a `response.create`
while another response is still in progress (it would refuse it).
"""

HUMAN_NUMBER = "+15550123456"
INSTRUCTIONS = (
    "You are the phone assistant of Acme. Callers can press keys: 1 for opening hours, 2 for the "
    "address, 0 for a person (the phone system transfers them; you do not). When you are told "
    "which key the caller pressed, answer that. Be brief."
)
TRANSFER_FAILED = "Say: Sorry, no one can take your call right now. How else can I help?"


async def on_call_alerting(e):
    call = e.call
    call.handleTones(True)
    call.answer()
    client = await OpenAI.Beta.createRealtimeAPIClient({})
    client.sessionUpdate({
        "instructions": INSTRUCTIONS,
        "voice": "alloy",
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500, "interrupt_response": True},
        "input_audio_transcription": {"model": "whisper-1"},
    })
    VoxEngine.sendMediaBetween(call, client)
    client.responseCreate({})  # the agent speaks first

    responding = False  # a response is in progress at the model
    playing = False  # the caller is hearing model audio
    queued = None  # the response to create once the agent has gone quiet

    def respond(response):
        """Have the agent answer now, cutting off whatever it is saying."""
        nonlocal queued
        if not responding and not playing:
            client.responseCreate(response)
            return
        queued = response
        client.clearMediaBuffer()  # stops playback, truncates, cancels the answer being generated
        if responding and not playing:
            client.responseCancel()  # generating, nothing played yet: clearMediaBuffer has nothing to clear

    def answer_queued():
        nonlocal queued
        if queued is not None and not responding and not playing:
            response, queued = queued, None
            client.responseCreate(response)

    def on_response_created(event):
        nonlocal responding
        responding = True

    def on_response_done(event):
        nonlocal responding
        responding = False
        answer_queued()

    def on_media_started(event):
        nonlocal playing
        playing = True

    def on_media_ended(event):
        nonlocal playing
        playing = False
        answer_queued()

    def on_speech_started(event):
        client.clearMediaBuffer()  # barge-in: stop playback, truncate at what the caller heard

    def on_tone(event):
        if event.tone == "0":
            Logger.info("caller pressed 0: transferring to %s", HUMAN_NUMBER)
            client.clearMediaBuffer()
            call.transferTo({"to": HUMAN_NUMBER})
            return
        client.conversationItemCreate(None, {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": f"The caller pressed {event.tone}"}],
        })
        respond({})

    def on_transfer_complete(event):
        Logger.info("transferred to %s; the agent leaves the call", event.to)
        call.stopMediaTo(client)
        client.close()

    def on_transfer_failed(event):
        Logger.warning("transfer to %s failed: %s", event.to, event.reason)
        client.conversationItemCreate(None, {
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": f"The transfer to a person failed: {event.reason}"}],
        })
        respond({"instructions": TRANSFER_FAILED})

    def on_disconnected(event):
        client.close()
        VoxEngine.terminate()

    Beta = OpenAI.Beta
    client.addEventListener(Beta.RealtimeAPIEvents.ResponseCreated, on_response_created)
    client.addEventListener(Beta.RealtimeAPIEvents.ResponseDone, on_response_done)
    client.addEventListener(Beta.RealtimeAPIEvents.InputAudioBufferSpeechStarted, on_speech_started)
    client.addEventListener(Beta.Events.WebSocketMediaStarted, on_media_started)
    client.addEventListener(Beta.Events.WebSocketMediaEnded, on_media_ended)
    call.addEventListener(CallEvents.ToneReceived, on_tone)
    call.addEventListener(CallEvents.TransferComplete, on_transfer_complete)
    call.addEventListener(CallEvents.TransferFailed, on_transfer_failed)
    call.addEventListener(CallEvents.Disconnected, on_disconnected)


VoxEngine.addEventListener(AppEvents.CallAlerting, on_call_alerting)
