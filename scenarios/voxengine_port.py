"""A VoxEngine OpenAI Realtime scenario, ported line for line from JavaScript.

The original, as you would deploy it on Voximplant (a hotel's booking line with one tool):

    require(Modules.OpenAI);

    const OPENAI_API_KEY = "PUT_YOUR_OPENAI_API_KEY_HERE";
    const SYSTEM_PROMPT = "You are Voxy, the booking assistant of the Harbour Hotel. Be brief and " +
      "friendly. To tell whether a room is free on a date, call check_availability.";
    const FULLY_BOOKED = ["2025-12-24", "2025-12-31"];
    const TOOLS = [{
      type: "function",
      name: "check_availability",
      description: "Whether a room is free on a date.",
      parameters: {
        type: "object",
        properties: {date: {type: "string", description: "The night, as YYYY-MM-DD"}},
        required: ["date"],
      },
    }];

    VoxEngine.addEventListener(AppEvents.CallAlerting, async ({call}) => {
      let realtimeAPIClient = undefined;

      const onCallEnded = () => {
        if (realtimeAPIClient) realtimeAPIClient.close();
        VoxEngine.terminate();
      };
      call.addEventListener(CallEvents.Disconnected, onCallEnded);
      call.addEventListener(CallEvents.Failed, onCallEnded);

      call.answer();

      const onWebSocketClose = (event) => {
        Logger.write(`===ON_WEB_SOCKET_CLOSE=== code ${event.code} ${event.reason}`);
        VoxEngine.terminate();
      };

      try {
        realtimeAPIClient = await OpenAI.Beta.createRealtimeAPIClient({
          apiKey: OPENAI_API_KEY,
          model: "gpt-realtime",
          onWebSocketClose: onWebSocketClose,
        });
      } catch (error) {
        Logger.write(`===CANNOT_CONNECT=== ${error}`);
        VoxEngine.terminate();
        return;
      }

      realtimeAPIClient.sessionUpdate({
        instructions: SYSTEM_PROMPT,
        voice: "alloy",
        turn_detection: {type: "server_vad", silence_duration_ms: 500},
        input_audio_transcription: {model: "whisper-1"},
        tools: TOOLS,
        tool_choice: "auto",
      });
      VoxEngine.sendMediaBetween(call, realtimeAPIClient);
      realtimeAPIClient.responseCreate({instructions: "Greet the caller and offer to check a date."});

      realtimeAPIClient.addEventListener(OpenAI.Beta.RealtimeAPIEvents.InputAudioBufferSpeechStarted, () => {
        Logger.write("===BARGE_IN===");
        realtimeAPIClient.clearMediaBuffer();
      });

      realtimeAPIClient.addEventListener(OpenAI.Beta.RealtimeAPIEvents.ResponseFunctionCallArgumentsDone, (event) => {
        if (event.data.name !== "check_availability") return;
        const args = JSON.parse(event.data.arguments);
        const output = {date: args.date, available: !FULLY_BOOKED.includes(args.date)};
        realtimeAPIClient.conversationItemCreate(undefined, {
          type: "function_call_output",
          call_id: event.data.call_id,
          output: JSON.stringify(output),
        });
        realtimeAPIClient.responseCreate({});
      });

      realtimeAPIClient.addEventListener(OpenAI.Beta.RealtimeAPIEvents.Error, (event) => {
        Logger.write(`===ERROR=== ${JSON.stringify(event.data)}`);
      });
    });

What changes in the port, and nothing else does:
- `require(Modules.OpenAI)` goes: `OpenAI`, `VoxEngine`, `AppEvents`, `CallEvents` and `Logger` are
  given to every scenario, per call.
- Arrow functions become `def`s; `async ({call}) =>` becomes `async def ...(event)` with
  `call = event.call`; `undefined` / `null` become `None`; `JSON` becomes `json`.
- `Logger.write(...)` becomes `Logger.info(...)` (the scenario's `Logger` is a `logging.Logger`).
- The API key: `None` uses the bridge's `OPENAI_API_KEY` setting, or the embedded local engine
  when there is none; never write a real key into a scenario file.
- `event.data.name` reads `event.data["name"]`: `data` is the server event as a dict. (The GA wire
  format, the bridge's default, carries `name`; the beta one does not.)
"""

import json

OPENAI_API_KEY = None
SYSTEM_PROMPT = ("You are Voxy, the booking assistant of the Harbour Hotel. Be brief and "
                 "friendly. To tell whether a room is free on a date, call check_availability.")
FULLY_BOOKED = ["2025-12-24", "2025-12-31"]
TOOLS = [{
    "type": "function",
    "name": "check_availability",
    "description": "Whether a room is free on a date.",
    "parameters": {
        "type": "object",
        "properties": {"date": {"type": "string", "description": "The night, as YYYY-MM-DD"}},
        "required": ["date"],
    },
}]


async def onCallAlerting(event):
    call = event.call
    realtimeAPIClient = None

    def onCallEnded(event):
        if realtimeAPIClient: realtimeAPIClient.close()
        VoxEngine.terminate()
    call.addEventListener(CallEvents.Disconnected, onCallEnded)
    call.addEventListener(CallEvents.Failed, onCallEnded)

    call.answer()

    def onWebSocketClose(event):
        Logger.info(f"===ON_WEB_SOCKET_CLOSE=== code {event.code} {event.reason}")
        VoxEngine.terminate()

    try:
        realtimeAPIClient = await OpenAI.Beta.createRealtimeAPIClient({
            "apiKey": OPENAI_API_KEY,
            "model": "gpt-realtime",
            "onWebSocketClose": onWebSocketClose,
        })
    except Exception as error:
        Logger.info(f"===CANNOT_CONNECT=== {error}")
        VoxEngine.terminate()
        return

    realtimeAPIClient.sessionUpdate({
        "instructions": SYSTEM_PROMPT,
        "voice": "alloy",
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
        "input_audio_transcription": {"model": "whisper-1"},
        "tools": TOOLS,
        "tool_choice": "auto",
    })
    VoxEngine.sendMediaBetween(call, realtimeAPIClient)
    realtimeAPIClient.responseCreate({"instructions": "Greet the caller and offer to check a date."})

    def onSpeechStarted(event):
        Logger.info("===BARGE_IN===")
        realtimeAPIClient.clearMediaBuffer()
    realtimeAPIClient.addEventListener(OpenAI.Beta.RealtimeAPIEvents.InputAudioBufferSpeechStarted, onSpeechStarted)

    def onFunctionCallArgumentsDone(event):
        if event.data["name"] != "check_availability": return
        args = json.loads(event.data["arguments"])
        output = {"date": args["date"], "available": args["date"] not in FULLY_BOOKED}
        realtimeAPIClient.conversationItemCreate(None, {
            "type": "function_call_output",
            "call_id": event.data["call_id"],
            "output": json.dumps(output),
        })
        realtimeAPIClient.responseCreate({})
    realtimeAPIClient.addEventListener(OpenAI.Beta.RealtimeAPIEvents.ResponseFunctionCallArgumentsDone, onFunctionCallArgumentsDone)

    def onError(event):
        Logger.info(f"===ERROR=== {json.dumps(event.data)}")
    realtimeAPIClient.addEventListener(OpenAI.Beta.RealtimeAPIEvents.Error, onError)


VoxEngine.addEventListener(AppEvents.CallAlerting, onCallAlerting)
