"""The bridge with SIP calls' media, for the load benchmark: the real app, RtpStreams, CallSessions.

    python -m bench.sip_target --port P --control-port C --scenarios bench/scenarios

The process `bench.load --targets sip` measures. It serves the bridge's app exactly as `serve`
does (uvicorn, the same limits, uvloop when installed; /healthz for the driver) and runs each SIP
call's media as the SIP listener will: an `RtpStream` from the pool, configured as an SDP answer
configures it, and the ordinary `CallSession` over it.

What it does not do is SIP. Until the signalling (its own branch) is merged, a one-line TCP
control protocol stands in for INVITE and BYE — `CALL <call-id> <rtp-port>` answers `OK <our
rtp-port>` (or `BUSY`: the pool is exhausted, a 503), `BYE <call-id>` ends the call and answers
`OK` once its session is over — so the figures are the media path's: RTP in, the jitter buffer,
the session and the model connection, the playout queue and the 20 ms clock, RTP out. A SIP
transaction per call setup and teardown is not in them. With the listener merged, the load
generator sends INVITEs instead and this file goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

import uvicorn

if __package__ in (None, ""):  # `python bench/sip_target.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import install_fast_loop  # noqa: E402
from telephony_bridge.audio.formats import ULAW_8K  # noqa: E402
from telephony_bridge.carriers.base import CallStarted, Carrier  # noqa: E402
from telephony_bridge.carriers.sip.codec import SIP_CAPABILITIES, SipCodec  # noqa: E402
from telephony_bridge.cli import uvicorn_options  # noqa: E402
from telephony_bridge.server.app import create_app  # noqa: E402
from telephony_bridge.server.carrier_routes import notify_hooks  # noqa: E402
from telephony_bridge.server.http_limits import uvicorn_config  # noqa: E402
from telephony_bridge.server.runtime import BridgeRuntime, load_runtime  # noqa: E402
from telephony_bridge.server.session import CallSession  # noqa: E402
from telephony_bridge.server.settings import Settings  # noqa: E402
from telephony_bridge.server.sip_media import RtpPortPool, RtpStream  # noqa: E402
from telephony_bridge.server.stream_tokens import StreamGrant  # noqa: E402

SESSION_END_WAIT_S = 10.0


class SipMediaCarrier(Carrier):
    """The SIP carrier as the session sees it (codec and capabilities; the signalling is elsewhere)."""

    name = "sip"
    prefixes = ()
    capabilities = SIP_CAPABILITIES

    @property
    def secured(self) -> bool:
        return True

    def new_codec(self) -> SipCodec:
        return SipCodec()


class SipMediaCalls:
    def __init__(self, runtime: BridgeRuntime, pool: RtpPortPool) -> None:
        self.runtime = runtime
        self.pool = pool
        self.carrier = SipMediaCarrier({})
        self.calls: dict[str, tuple[RtpStream, asyncio.Task[None]]] = {}

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).decode().split()
            if len(line) == 3 and line[0] == "CALL":
                writer.write(self.call(line[1], int(line[2])).encode())
            elif len(line) == 2 and line[0] == "BYE":
                await self.bye(line[1])
                writer.write(b"OK\n")
            else:
                writer.write(b"ERROR\n")
            await writer.drain()
        finally:
            writer.close()

    def call(self, call_id: str, rtp_port: int) -> str:
        stream = self.pool.open(call_id)
        if stream is None:
            return "BUSY\n"
        stream.configure(("127.0.0.1", rtp_port), 0, 101, "sendrecv")
        self.calls[call_id] = (stream, asyncio.create_task(self._run(call_id, stream)))
        return f"OK {stream.local_port}\n"

    async def bye(self, call_id: str) -> None:
        entry = self.calls.get(call_id)
        if entry is None:
            return
        stream, task = entry
        stream.hang_up_by_peer()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), SESSION_END_WAIT_S)

    async def _run(self, call_id: str, stream: RtpStream) -> None:
        runtime = self.runtime

        def binding(start: CallStarted) -> StreamGrant:
            scenario = runtime.scenario_for(start.number)
            if scenario is None:
                raise RuntimeError("no scenario")
            return StreamGrant(call_id=start.call_id, scenario=scenario, caller=start.caller, number=start.number)

        runtime.streams_opened += 1
        session = CallSession(stream, runtime, runtime.streams_opened, self.carrier, binding=binding)
        runtime.sessions.add(session)
        runtime.metrics.active_calls = len(runtime.sessions)
        notify_hooks(runtime.on_session_start, session)
        stream.begin(CallStarted(call_id, call_id, ULAW_8K, caller="+15550199", number="+15550100"))
        try:
            await session.run()
        finally:
            runtime.sessions.discard(session)
            runtime.metrics.active_calls = len(runtime.sessions)
            notify_hooks(runtime.on_session_end, session)
            await stream.aclose()
            self.calls.pop(call_id, None)


async def serve(args: argparse.Namespace) -> None:
    settings = Settings.from_environ(host="127.0.0.1", port=args.port, scenarios_dir=Path(args.scenarios))
    runtime = load_runtime(settings)
    first, last = (int(x) for x in args.rtp_ports.split("-"))
    pool = RtpPortPool(first, last, "127.0.0.1", metrics=runtime.metrics)
    calls = SipMediaCalls(runtime, pool)
    control = await asyncio.start_server(calls.control, "127.0.0.1", args.control_port)
    options = {**uvicorn_options(settings), "lifespan": "on"}  # as `serve` runs it (one worker)
    server = uvicorn.Server(uvicorn_config(create_app(settings, runtime), settings, **options))
    try:
        await server.serve()
    finally:
        control.close()
        for stream, _ in list(calls.calls.values()):
            stream.hang_up_by_peer()
        await pool.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.sip_target", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="the bridge's HTTP port (/healthz)")
    parser.add_argument("--control-port", type=int, required=True, help="the INVITE/BYE stand-in's TCP port")
    parser.add_argument("--scenarios", required=True)
    parser.add_argument("--rtp-ports", default="40000-40999", help="RTP_PORTS for the calls (default 40000-40999)")
    args = parser.parse_args(argv)
    install_fast_loop()
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
