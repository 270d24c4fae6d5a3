"""An interpreter on the line: the caller speaks, hears their words back in Spanish.

The GA client of type TRANSLATION (`OpenAI.RealtimeAPIClientType.TRANSLATION`, model
`gpt-realtime-translate`): no instructions, no turns, no responses. Caller audio flows to the
translation session continuously (silence too, which the model needs as its clock) and the
translated audio plays back into the same call. The transcripts arrive as
`SessionInputTranscriptDelta` (the caller's words, when `audio.input.transcription` is set) and
`SessionOutputTranscriptDelta` (the translation). When the caller presses #, `sessionClose()` asks
the session to finish: it translates what it still has, then `SessionClosed`, and the call ends
once that last translation has played (WebSocketMediaEnded), or at once if nothing is playing. To interpret between two people, send the caller's audio
to one translation client and play it into the other party's call (`client.sendMediaTo(other)`),
and the other way round with a second client.

Without OPENAI_API_KEY the embedded local engine plays the interpreter: it "translates" each
utterance by saying its script's next line.
"""

import json

OPENAI_API_KEY = None
TARGET_LANGUAGE = "es"


async def onCallAlerting(event):
    call = event.call
    client = None
    closing = False
    playing = False
    heard = []
    said = []
    call.answer()
    call.handleTones(True)

    def onDisconnected(event):
        if client: client.close()
        VoxEngine.terminate()
    call.addEventListener(CallEvents.Disconnected, onDisconnected)

    try:
        client = await OpenAI.createRealtimeAPIClient({
            "apiKey": OPENAI_API_KEY,
            "type": OpenAI.RealtimeAPIClientType.TRANSLATION,
            "model": "gpt-realtime-translate",
            "onWebSocketClose": lambda event: Logger.write(f"===WS_CLOSED=== {event.code}"),
        })
    except Exception as error:
        Logger.write(f"===CANNOT_CONNECT=== {error}")
        VoxEngine.terminate()
        return

    # Only what a translation session takes: the target language, the source transcript, noise reduction.
    client.sessionUpdate({"session": {"audio": {
        "input": {"transcription": {"model": "gpt-live-transcribe"}},
        "output": {"language": TARGET_LANGUAGE},
    }}})
    VoxEngine.sendMediaBetween(call, client)

    client.addEventListener(OpenAI.RealtimeAPIEvents.SessionInputTranscriptDelta,
                            lambda event: heard.append(event.data.payload.delta))

    def onOutputTranscript(event):
        said.append(event.data.payload.delta)
        Logger.write(f"===TRANSLATED=== {event.data.payload.delta}")
    client.addEventListener(OpenAI.RealtimeAPIEvents.SessionOutputTranscriptDelta, onOutputTranscript)

    def onTone(event):
        nonlocal closing
        if event.tone == "#" and not closing:
            closing = True
            Logger.write("===CLOSING===")
            client.sessionClose()
    call.addEventListener(CallEvents.ToneReceived, onTone)

    def onSessionClosed(event):
        Logger.write(f"===SESSION_CLOSED=== {json.dumps({'heard': ''.join(heard), 'said': ''.join(said)})}")
        if not playing: call.hangup()  # else once the last translation has played
    client.addEventListener(OpenAI.RealtimeAPIEvents.SessionClosed, onSessionClosed)

    def onMediaStarted(event):
        nonlocal playing
        playing = True
    client.addEventListener(OpenAI.Events.WebSocketMediaStarted, onMediaStarted)

    def onMediaEnded(event):
        nonlocal playing
        playing = False
        if closing: call.hangup()
    client.addEventListener(OpenAI.Events.WebSocketMediaEnded, onMediaEnded)

    def onError(event):
        Logger.write(f"===ERROR=== {json.dumps(event.data.payload.error)}")
    client.addEventListener(OpenAI.RealtimeAPIEvents.Error, onError)


VoxEngine.addEventListener(AppEvents.CallAlerting, onCallAlerting)
