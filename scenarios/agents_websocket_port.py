"""The Agents SDK's OpenAIRealtimeWebSocket transport, used on its own, ported to a phone call.

The original (TypeScript, @openai/agents-realtime), the transport without a RealtimeSession:

    import { OpenAIRealtimeWebSocket } from '@openai/agents/realtime';

    const transport = new OpenAIRealtimeWebSocket();
    await transport.connect({
      apiKey: process.env.OPENAI_API_KEY,
      model: 'gpt-realtime',
      initialSessionConfig: {
        instructions: 'You are the booking line of the Harbour Hotel. Be brief.',
        audio: {
          input: { turnDetection: { type: 'server_vad', silenceDurationMs: 500 },
                   transcription: { model: 'whisper-1' } },
          output: { voice: 'alloy' },
        },
        tools: [{ type: 'function', name: 'check_availability', description: 'Whether a room is free on a date.',
                  parameters: { type: 'object', properties: { date: { type: 'string' } }, required: ['date'] } }],
      },
    });

    transport.on('audio', (event) => speaker.play(event.data));       // the model's voice
    transport.on('audio_interrupted', () => console.log('barge-in'));  // interrupt() on speech_started
    transport.on('function_call', async (toolCall) => {
      const args = JSON.parse(toolCall.arguments);
      const output = { date: args.date, available: !FULLY_BOOKED.includes(args.date) };
      transport.sendFunctionCallOutput(toolCall, JSON.stringify(output), true);
    });
    transport.on('turn_done', (event) => console.log('usage', event.response.usage));
    microphone.on('data', (chunk) => transport.sendAudio(chunk));
    transport.sendEvent({ type: 'response.create' });                  // greet first

What changes on a phone call, and nothing else does:
- `OpenAI.RealtimeWebSocket()` for `new OpenAIRealtimeWebSocket()`, inside `AppEvents.CallAlerting`.
- The speaker and the microphone are the call: `VoxEngine.sendMediaBetween(call, transport)`. The
  transport interrupts itself when the caller speaks, as in the SDK; on a call `interrupt()`
  truncates at what the caller heard (the bridge's playout), not at wall-clock time.
"""

import json

FULLY_BOOKED = ["2025-12-24", "2025-12-31"]
TOOLS = [{
    "type": "function",
    "name": "check_availability",
    "description": "Whether a room is free on a date.",
    "parameters": {"type": "object", "properties": {"date": {"type": "string"}}, "required": ["date"]},
}]


async def onCallAlerting(event):
    call = event.call
    call.answer()

    transport = OpenAI.RealtimeWebSocket()
    await transport.connect({
        "apiKey": None,
        "model": "gpt-realtime",
        "initialSessionConfig": {
            "instructions": "You are the booking line of the Harbour Hotel. Be brief.",
            "audio": {
                "input": {"turnDetection": {"type": "server_vad", "silenceDurationMs": 500},
                          "transcription": {"model": "whisper-1"}},
                "output": {"voice": "alloy"},
            },
            "tools": TOOLS,
        },
    })
    VoxEngine.sendMediaBetween(call, transport)

    transport.on("audio_interrupted", lambda: Logger.info("barge-in"))

    async def on_function_call(toolCall):
        args = json.loads(toolCall["arguments"])
        output = {"date": args["date"], "available": args["date"] not in FULLY_BOOKED}
        transport.sendFunctionCallOutput(toolCall, json.dumps(output), True)

    transport.on("function_call", on_function_call)
    transport.on("turn_done", lambda event: Logger.info(f"usage {event['response']['usage']}"))
    transport.sendEvent({"type": "response.create"})

    def on_disconnected(event):
        transport.close()
        VoxEngine.terminate()

    call.addEventListener(CallEvents.Disconnected, on_disconnected)


VoxEngine.addEventListener(AppEvents.CallAlerting, onCallAlerting)
