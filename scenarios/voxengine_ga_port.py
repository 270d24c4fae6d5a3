"""Voximplant's GA OpenAI function-calling example, ported from JavaScript: syntax only.

Written from Voximplant's description of its GA example (shared/reference/voximplant-api.md):
answer, create the GA client, `sessionUpdate({session})` with instructions, voice, turn detection
and tools, `sendMediaBetween`, `responseCreate({})` so the agent greets first; barge-in on
`InputAudioBufferSpeechStarted`; tool calls read from `ResponseDone` output
(`event.data.payload.response.output`), answered with `conversationItemCreate({item})` and
`responseCreate({})`; `end_call` hangs up once the goodbye has played (`WebSocketMediaEnded`).
The JavaScript, as you would deploy it on Voximplant:

    require(Modules.OpenAI);

    const SYSTEM_PROMPT = "You are Voxy, the front desk of the Harbour Hotel. Be brief. To tell " +
      "whether a room is free on a date, call check_availability. When the caller is done, say " +
      "goodbye and call end_call.";
    const FULLY_BOOKED = ["2025-12-24", "2025-12-31"];
    const TOOLS = [
      {type: "function", name: "check_availability", description: "Whether a room is free on a date.",
       parameters: {type: "object", properties: {date: {type: "string", description: "YYYY-MM-DD"}},
                    required: ["date"]}},
      {type: "function", name: "end_call", description: "Hang up after saying goodbye.",
       parameters: {type: "object", properties: {}}},
    ];

    VoxEngine.addEventListener(AppEvents.CallAlerting, async ({call}) => {
      let client = undefined;
      let hangupWhenPlayed = false;
      call.answer();
      call.addEventListener(CallEvents.Connected, () => Logger.write("===CONNECTED==="));
      call.addEventListener(CallEvents.Disconnected, () => {
        if (client) client.close();
        VoxEngine.terminate();
      });

      try {
        client = await OpenAI.createRealtimeAPIClient({
          apiKey: OPENAI_API_KEY,
          model: "gpt-realtime-2.1",
          onWebSocketClose: (event) => { Logger.write(`===WS_CLOSED=== ${event.code}`); VoxEngine.terminate(); },
        });
      } catch (error) {
        Logger.write(`===CANNOT_CONNECT=== ${error}`);
        VoxEngine.terminate();
        return;
      }

      client.sessionUpdate({session: {
        type: "realtime",
        instructions: SYSTEM_PROMPT,
        audio: {input: {turn_detection: {type: "server_vad", silence_duration_ms: 500},
                        transcription: {model: "gpt-4o-mini-transcribe"}},
                output: {voice: "marin"}},
        tools: TOOLS,
        tool_choice: "auto",
      }});
      VoxEngine.sendMediaBetween(call, client);
      client.responseCreate({});

      client.addEventListener(OpenAI.RealtimeAPIEvents.InputAudioBufferSpeechStarted, () => {
        Logger.write("===BARGE_IN===");
        client.clearMediaBuffer();
      });

      client.addEventListener(OpenAI.RealtimeAPIEvents.ResponseDone, (event) => {
        const output = event.data.payload.response.output || [];
        for (const item of output) {
          if (item.type !== "function_call") continue;
          if (item.name === "check_availability") {
            const args = JSON.parse(item.arguments);
            const result = {date: args.date, available: !FULLY_BOOKED.includes(args.date)};
            client.conversationItemCreate({item: {type: "function_call_output", call_id: item.call_id,
                                                  output: JSON.stringify(result)}});
            client.responseCreate({});
          } else if (item.name === "end_call") {
            hangupWhenPlayed = true;
          }
        }
      });

      client.addEventListener(OpenAI.Events.WebSocketMediaEnded, () => {
        if (hangupWhenPlayed) call.hangup();
      });

      client.addEventListener(OpenAI.RealtimeAPIEvents.Error, (event) => {
        Logger.write(`===ERROR=== ${JSON.stringify(event.data.payload.error)}`);
      });
    });

What the port changes: arrow functions become `def`s, `undefined` becomes `None`, `JSON` becomes
`json`, `Logger.write` stays (the scenario's Logger has it), `for (const x of xs)` becomes
`for x in xs`, `||` becomes `or`. The key: `None` uses the bridge's OPENAI_API_KEY, or the
embedded local engine when there is none. The end_call tool's response (the goodbye) ends with
WebSocketMediaEnded once the phone has played it, so the hang-up never cuts it off.
"""

import json

OPENAI_API_KEY = None
SYSTEM_PROMPT = ("You are Voxy, the front desk of the Harbour Hotel. Be brief. To tell "
                 "whether a room is free on a date, call check_availability. When the caller is done, say "
                 "goodbye and call end_call.")
FULLY_BOOKED = ["2025-12-24", "2025-12-31"]
TOOLS = [
    {"type": "function", "name": "check_availability", "description": "Whether a room is free on a date.",
     "parameters": {"type": "object", "properties": {"date": {"type": "string", "description": "YYYY-MM-DD"}},
                    "required": ["date"]}},
    {"type": "function", "name": "end_call", "description": "Hang up after saying goodbye.",
     "parameters": {"type": "object", "properties": {}}},
]


async def onCallAlerting(event):
    call = event.call
    client = None
    hangupWhenPlayed = False
    call.answer()
    call.addEventListener(CallEvents.Connected, lambda event: Logger.write("===CONNECTED==="))

    def onDisconnected(event):
        if client: client.close()
        VoxEngine.terminate()
    call.addEventListener(CallEvents.Disconnected, onDisconnected)

    def onWebSocketClose(event):
        Logger.write(f"===WS_CLOSED=== {event.code}")
        VoxEngine.terminate()

    try:
        client = await OpenAI.createRealtimeAPIClient({
            "apiKey": OPENAI_API_KEY,
            "model": "gpt-realtime-2.1",
            "onWebSocketClose": onWebSocketClose,
        })
    except Exception as error:
        Logger.write(f"===CANNOT_CONNECT=== {error}")
        VoxEngine.terminate()
        return

    client.sessionUpdate({"session": {
        "type": "realtime",
        "instructions": SYSTEM_PROMPT,
        "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                            "transcription": {"model": "gpt-4o-mini-transcribe"}},
                  "output": {"voice": "marin"}},
        "tools": TOOLS,
        "tool_choice": "auto",
    }})
    VoxEngine.sendMediaBetween(call, client)
    client.responseCreate({})

    def onSpeechStarted(event):
        Logger.write("===BARGE_IN===")
        client.clearMediaBuffer()
    client.addEventListener(OpenAI.RealtimeAPIEvents.InputAudioBufferSpeechStarted, onSpeechStarted)

    def onResponseDone(event):
        nonlocal hangupWhenPlayed
        output = event.data.payload.response.output or []
        for item in output:
            if item.type != "function_call": continue
            if item.name == "check_availability":
                args = json.loads(item.arguments)
                result = {"date": args["date"], "available": args["date"] not in FULLY_BOOKED}
                client.conversationItemCreate({"item": {"type": "function_call_output", "call_id": item.call_id,
                                                        "output": json.dumps(result)}})
                client.responseCreate({})
            elif item.name == "end_call":
                hangupWhenPlayed = True
    client.addEventListener(OpenAI.RealtimeAPIEvents.ResponseDone, onResponseDone)

    def onMediaEnded(event):
        if hangupWhenPlayed: call.hangup()
    client.addEventListener(OpenAI.Events.WebSocketMediaEnded, onMediaEnded)

    def onError(event):
        Logger.write(f"===ERROR=== {json.dumps(event.data.payload.error)}")
    client.addEventListener(OpenAI.RealtimeAPIEvents.Error, onError)


VoxEngine.addEventListener(AppEvents.CallAlerting, onCallAlerting)
