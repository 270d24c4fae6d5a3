"""`telephony-bridge serve | engine | call | dial | demo | calls` — the command line."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from telephony_bridge.logs import configure_logging
from telephony_bridge.server.scenario_secrets import SecretsFileError
from telephony_bridge.voxengine.scenario import ScenarioError

if TYPE_CHECKING:
    from telephony_bridge.server.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    from telephony_bridge.server.app import create_app
    from telephony_bridge.server.drain import (
        DrainingServer,
        DrainingSupervisor,
        announce_listening,
        reuse_port_socket,
    )
    from telephony_bridge.server.http_limits import uvicorn_config
    from telephony_bridge.server.runtime import load_runtime
    from telephony_bridge.server.settings import Settings

    try:
        settings = Settings.from_environ(
            host=args.host,
            port=args.port,
            scenarios_dir=Path(args.scenarios) if args.scenarios else None,
            calls_dir=Path(args.calls_dir) if args.calls_dir else None,
            reload=args.reload or None,
            audiosocket_listen=tuple(args.audiosocket) or None,  # replaces AUDIOSOCKET_LISTEN when given
            sip_listen=tuple(args.sip) or None,  # replaces SIP_LISTEN when given
        )
    except ValueError as exc:  # a malformed setting: say which, without a traceback
        print(f"telephony-bridge: {exc}", file=sys.stderr)
        return 2
    if settings.sip_listen and args.workers > 1:
        print("telephony-bridge: --sip works with one worker only", file=sys.stderr)
        return 2
    if settings.audiosocket_listen and args.workers > 1:
        # Each worker would bind the listener's port; one process per listener set keeps a call's
        # TCP connection and its MAX_CALLS count in one place. Run more instances instead.
        print("telephony-bridge: --audiosocket works with one worker only", file=sys.stderr)
        return 2
    if args.reload and args.workers > 1:
        print("telephony-bridge: --reload works with one worker only", file=sys.stderr)
        return 2
    # Bind before anything else: a port in use is a clear error here, and with --port 0 the real
    # port is known before the TwiML's stream URL (PUBLIC_URL's default) is derived from it.
    try:
        sock = (
            _listening_socket(settings.host, settings.port)
            if args.workers <= 1
            else reuse_port_socket(settings.host, settings.port, listen=False)
        )
    except OSError as exc:
        print(
            f"telephony-bridge: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    settings = dataclasses.replace(settings, port=sock.getsockname()[1])
    try:
        runtime = load_runtime(settings)  # fail here, with file and line, not in a worker
    except (ScenarioError, SecretsFileError) as exc:
        sock.close()
        print(f"telephony-bridge: cannot start: {exc}", file=sys.stderr)
        return 2
    common = uvicorn_options(settings)
    if args.workers <= 1:
        DrainingServer(uvicorn_config(create_app(settings, runtime), settings, **common), runtime).run(sockets=[sock])
        return 0
    from telephony_bridge.server.factory import HOST_ENV, PORT_ENV

    # Workers are fresh processes: they read their settings from the environment.
    os.environ.update(
        {
            HOST_ENV: settings.host,
            PORT_ENV: str(settings.port),
            "SCENARIOS_DIR": str(settings.scenarios_dir),
            "LOG_FORMAT": "json" if args.log_json else "text",
            "TELEPHONY_BRIDGE_VERBOSE": "1" if args.verbose else "0",
        }
    )
    if settings.calls_dir is not None:
        os.environ["CALLS_DIR"] = str(settings.calls_dir)
    # A call's webhook and its stream may reach different workers: they share the token secret.
    os.environ.setdefault("STREAM_TOKEN_SECRET", settings.stream_token_secret.hex())
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="telephony-bridge-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # /metrics then sums every worker
    for stale in Path(metrics_dir).glob("*.db"):
        stale.unlink()
    config = uvicorn_config(
        "telephony_bridge.server.factory:app_from_environ", settings, factory=True, workers=args.workers, **common
    )
    announce_listening(settings, settings.port, args.workers)
    DrainingSupervisor(config, sockets=[sock]).run()
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `serve` gives uvicorn beside `uvicorn_config`'s limits, one worker or many. With the
    `fast` extra installed the event loop is uvloop, and the HTTP protocol (server/http_limits.py)
    parses webhooks with httptools (C) instead of h11 (pure Python)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "loop": "uvloop" if _importable("uvloop") else "asyncio",
        "proxy_headers": False,
    }  # PUBLIC_URL, never proxy headers


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # IPPROTO_TCP: asyncio sets TCP_NODELAY
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once over TIME_WAIT, as uvicorn does
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="telephony-bridge", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument(
        "--log-json",
        action="store_true",
        default=os.environ.get("LOG_FORMAT") == "json",
        help="JSON log lines (default: human-readable; also LOG_FORMAT=json)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the bridge server (Twilio webhook + media WebSocket)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--scenarios", help="scenarios directory (default: $SCENARIOS_DIR or ./scenarios)")
    serve.add_argument("--calls-dir", help="write each call's JSON transcript here (default: $CALLS_DIR)")
    serve.add_argument("--reload", action="store_true", help="reload scenarios and routes when their files change")
    serve.add_argument("--workers", type=int, default=1, help="processes serving the one port (calls never cross them)")
    serve.add_argument(
        "--audiosocket",
        action="append",
        default=[],
        metavar="HOST:PORT[=NUMBER]",
        help="also listen for Asterisk AudioSocket calls here (repeatable; NUMBER: the dialed number "
        "of every call on this listener, routed by routes.toml; default: $AUDIOSOCKET_LISTEN)",
    )
    serve.add_argument(
        "--sip",
        action="append",
        default=[],
        metavar="udp:HOST:PORT",
        help="also take SIP calls here (repeatable; udp: or tcp:; admitted by $SIP_ALLOW or $SIP_USERS; "
        "default: $SIP_LISTEN)",
    )
    serve.set_defaults(run=_serve)

    try:
        from telephony_bridge.local_engine import server as engine_server

        engine = commands.add_parser("engine", help="run the embedded local Realtime-compatible engine alone")
        engine_server.add_arguments(engine)
        engine.set_defaults(run=lambda a: asyncio.run(engine_server.run(a)))
    except ImportError:
        pass

    try:
        from telephony_bridge.testing import call_cli

        call = commands.add_parser("call", help="place a simulated Twilio call to a bridge")
        call_cli.add_arguments(call)
        call.set_defaults(run=lambda a: asyncio.run(call_cli.run(a)))
    except ImportError:
        pass

    dial = commands.add_parser("dial", help="start a scenario on a running bridge (it places its own calls)")
    dial.add_argument(
        "--scenario", required=True, help="the scenario's name (a file in the bridge's scenarios directory)"
    )
    dial.add_argument(
        "--custom-data", default="", help="the scenario's custom data (VoxEngine.customData()), often JSON"
    )
    dial.add_argument(
        "--url",
        default=os.environ.get("BRIDGE_URL", "http://127.0.0.1:8080"),
        help="the bridge's base URL (default: $BRIDGE_URL or http://127.0.0.1:8080)",
    )
    dial.add_argument(
        "--api-key",
        default=None,
        help="one of the bridge's API_KEYS (default: $BRIDGE_API_KEY, else the first of $API_KEYS)",
    )
    dial.set_defaults(run=_dial)

    bench = commands.add_parser("bench", help="the load benchmark (from a checkout: bench/load.py); options after --")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(run=_bench)

    demo = commands.add_parser("demo", help="a real simulated call through the real server and the local engine")
    demo.add_argument(
        "--dialect",
        choices=("realtime", "live"),
        default="realtime",
        help="the model protocol: the Realtime receptionist (default) or GPT-Live's (scenarios/live_receptionist.py)",
    )
    demo.set_defaults(run=_demo)

    from telephony_bridge.cli_calls import add_calls_parser

    add_calls_parser(commands)
    return parser


def _bench(args: argparse.Namespace) -> int:
    # The benchmark is part of the repository, not of the installed package: run it from a checkout.
    root = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "bench" / "load.py").exists()), None)
    if root is None:
        print(
            "telephony-bridge bench: run it from a checkout of the project (bench/load.py not found)", file=sys.stderr
        )
        return 2
    sys.path.insert(0, str(root))
    from bench.load import main as bench_main

    return bench_main([a for a in args.bench_args if a != "--"])


def _dial(args: argparse.Namespace) -> int:
    """POST /api/scenarios/{name}/start; prints the session id."""
    import urllib.error
    import urllib.parse
    import urllib.request

    import orjson

    key = (
        args.api_key
        or os.environ.get("BRIDGE_API_KEY")
        or next((k.strip() for k in os.environ.get("API_KEYS", "").split(",") if k.strip()), None)
    )
    if not key:
        print("telephony-bridge dial: no API key (--api-key, $BRIDGE_API_KEY or $API_KEYS)", file=sys.stderr)
        return 2
    url = f"{args.url.rstrip('/')}/api/scenarios/{urllib.parse.quote(args.scenario, safe='')}/start"
    request = urllib.request.Request(
        url,
        data=orjson.dumps({"customData": args.custom_data}),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        hint = {401: " (wrong API key)", 404: " (no such scenario, or no API_KEYS configured on the bridge)"}
        print(
            f"telephony-bridge dial: HTTP {exc.code}{hint.get(exc.code, '')}: {exc.read().decode(errors='replace')}",
            file=sys.stderr,
        )
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"telephony-bridge dial: no bridge at {args.url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    print(answer["sessionId"])
    return 0


def _demo(args: argparse.Namespace) -> int:
    from telephony_bridge.demo import main as demo_main

    return demo_main(dialect=getattr(args, "dialect", "realtime"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, args.log_json)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
