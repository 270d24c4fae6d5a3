"""`telephony-bridge serve | engine | call | demo` — the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from telephony_bridge.voxengine.scenario import ScenarioError


def _configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from telephony_bridge.server.app import create_app, load_runtime
    from telephony_bridge.server.settings import Settings

    settings = Settings.from_environ(
        host=args.host, port=args.port, scenarios_dir=Path(args.scenarios) if args.scenarios else None,
        calls_dir=Path(args.calls_dir) if args.calls_dir else None, reload=args.reload or None,
    )
    try:
        runtime = load_runtime(settings)
    except ScenarioError as exc:
        print(f"telephony-bridge: cannot start: {exc}", file=sys.stderr)
        return 2
    from telephony_bridge.server.drain import DrainingServer

    app = create_app(settings, runtime)
    loop = "uvloop" if _has_uvloop() else "asyncio"
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", loop=loop, ws_max_size=1 << 20)
    DrainingServer(config, runtime).run()
    return 0


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="telephony-bridge", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the bridge server (Twilio webhook + media WebSocket)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--scenarios", help="scenarios directory (default: $SCENARIOS_DIR or ./scenarios)")
    serve.add_argument("--calls-dir", help="write each call's JSON transcript here (default: $CALLS_DIR)")
    serve.add_argument("--reload", action="store_true", help="reload scenarios and routes when their files change")
    serve.set_defaults(run=_serve)

    try:
        from telephony_bridge.local_engine import server as engine_server

        engine = commands.add_parser("engine", help="run the embedded local Realtime-compatible engine alone")
        engine_server.add_arguments(engine)
        engine.set_defaults(run=lambda a: asyncio.run(engine_server.run(a)))
    except ImportError:
        pass

    try:
        from telephony_bridge.testing import simulator

        call = commands.add_parser("call", help="place a simulated Twilio call to a bridge")
        simulator.add_arguments(call)
        call.set_defaults(run=lambda a: asyncio.run(simulator.run(a)))
    except ImportError:
        pass

    demo = commands.add_parser("demo", help="a real simulated call through the real server and the local engine")
    demo.set_defaults(run=_demo)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from telephony_bridge.demo import main as demo_main

    return demo_main()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
