"""An outbound call with custom data, ported from Voximplant's outbound OpenAI example.

Started from outside, not by a caller: Voximplant's StartScenarios with `script_custom_data`, here
`POST /api/scenarios/outbound_call/start` with `{"customData": "{\"phone\": ...}"}` (or
`telephony-bridge dial --scenario outbound_call --custom-data '{...}'`). The original, as you
would deploy it on Voximplant (an appointment reminder):

    require(Modules.OpenAI);

    const OPENAI_API_KEY = "PUT_YOUR_OPENAI_API_KEY_HERE";
    let call;
    let realtimeAPIClient;

    VoxEngine.addEventListener(AppEvents.Started, () => {
      const data = JSON.parse(VoxEngine.customData());  // {phone, callerId, name, appointment}
      call = VoxEngine.callPSTN(data.phone, data.callerId, {amd: true});

      const onCallEnded = () => {
        if (realtimeAPIClient) realtimeAPIClient.close();
        VoxEngine.terminate();
      };
      call.addEventListener(CallEvents.Disconnected, onCallEnded);
      call.addEventListener(CallEvents.Failed, (event) => {
        Logger.write(`===CALL_FAILED=== ${event.code} ${event.reason}`);
        VoxEngine.terminate();
      });

      call.addEventListener(CallEvents.Connected, async (event) => {
        if (event.amd === "machine") {
          Logger.write("===ANSWERING_MACHINE===");
          call.hangup();
          return;
        }
        try {
          realtimeAPIClient = await OpenAI.Beta.createRealtimeAPIClient({
            apiKey: OPENAI_API_KEY,
            model: "gpt-realtime",
          });
        } catch (error) {
          Logger.write(`===CANNOT_CONNECT=== ${error}`);
          call.hangup();
          return;
        }
        realtimeAPIClient.sessionUpdate({
          instructions: `You are calling ${data.name} from Harbour Dental to remind them of their ` +
            `appointment on ${data.appointment}. Be brief; ask them to confirm.`,
          voice: "alloy",
          turn_detection: {type: "server_vad", silence_duration_ms: 500},
          input_audio_transcription: {model: "whisper-1"},
        });
        VoxEngine.sendMediaBetween(call, realtimeAPIClient);
        realtimeAPIClient.responseCreate({instructions: `Greet ${data.name} and remind them of the appointment.`});
        realtimeAPIClient.addEventListener(OpenAI.Beta.RealtimeAPIEvents.InputAudioBufferSpeechStarted, () => {
          realtimeAPIClient.clearMediaBuffer();
        });
      });
    });

What changes in the port is what changes in scenarios/voxengine_port.py (arrow functions become
`def`s, `JSON` becomes `json`, `Logger.write` becomes `Logger.info`, the key is `None`: the
bridge's own setting or the local engine). `{amd: true}` asks the carrier for answering-machine
detection (Twilio's machineDetection); its result is `event.amd` on Connected: "human",
"machine", "fax" or "unknown".
"""

import json

OPENAI_API_KEY = None


def customData():
    # VoxEngine.customData() is the scenario APIs' to expose; until it is, the session's custom
    # data is on VoxEngine.custom_data (the same string).
    return VoxEngine.customData() if hasattr(VoxEngine, "customData") else VoxEngine.custom_data


def onStarted(event):
    data = json.loads(customData())  # {phone, callerId, name, appointment}
    call = VoxEngine.callPSTN(data["phone"], data["callerId"], {"amd": True})
    realtimeAPIClient = None

    def onCallEnded(event):
        if realtimeAPIClient: realtimeAPIClient.close()
        VoxEngine.terminate()
    call.addEventListener(CallEvents.Disconnected, onCallEnded)

    def onFailed(event):
        Logger.info(f"===CALL_FAILED=== {event.code} {event.reason}")
        VoxEngine.terminate()
    call.addEventListener(CallEvents.Failed, onFailed)

    async def onConnected(event):
        nonlocal realtimeAPIClient
        if event.amd == "machine":
            Logger.info("===ANSWERING_MACHINE===")
            call.hangup()
            return
        try:
            realtimeAPIClient = await OpenAI.Beta.createRealtimeAPIClient({
                "apiKey": OPENAI_API_KEY,
                "model": "gpt-realtime",
            })
        except Exception as error:
            Logger.info(f"===CANNOT_CONNECT=== {error}")
            call.hangup()
            return
        realtimeAPIClient.sessionUpdate({
            "instructions": f"You are calling {data['name']} from Harbour Dental to remind them of their "
                            f"appointment on {data['appointment']}. Be brief; ask them to confirm.",
            "voice": "alloy",
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
            "input_audio_transcription": {"model": "whisper-1"},
        })
        VoxEngine.sendMediaBetween(call, realtimeAPIClient)
        realtimeAPIClient.responseCreate({"instructions": f"Greet {data['name']} and remind them of the appointment."})

        def onSpeechStarted(event):
            realtimeAPIClient.clearMediaBuffer()
        realtimeAPIClient.addEventListener(OpenAI.Beta.RealtimeAPIEvents.InputAudioBufferSpeechStarted, onSpeechStarted)
    call.addEventListener(CallEvents.Connected, onConnected)


VoxEngine.addEventListener(AppEvents.Started, onStarted)
