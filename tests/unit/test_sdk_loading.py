"""Carrier SDKs and the call store's SQLAlchemy are loaded only for a bridge that uses them.

Each weighs tens of MB and a few hundred ms (importing all of them took the app's import from
0.7 s and 62 MB to 2.8 s and 100 MB). A configured carrier loads its SDK when it is made, at
start-up, so that no caller ever waits on an import on the event loop (carriers/base.py). Each
check runs in a fresh interpreter: this test process has long imported everything.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

HEAVY = ("twilio.rest", "plivo", "vonage_jwt", "vonage_voice", "sqlalchemy")


def loaded_after(code: str) -> set[str]:
    """Which of HEAVY are in sys.modules after running `code` in a new interpreter."""
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import sys
        print(" ".join(m for m in {HEAVY!r} if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return set(done.stdout.split())


def test_an_app_with_no_carrier_configured_and_no_store_loads_none_of_them():
    assert loaded_after("""
        from telephony_bridge.server.app import create_app
        from telephony_bridge.server.settings import Settings
        app = create_app(Settings(realtime_url="ws://127.0.0.1:9/unused"))
        assert len(app.state.runtime.carriers) >= 6
    """) == set()


def test_a_configured_carrier_loads_its_sdk_when_it_is_made():
    assert loaded_after("""
        from telephony_bridge.carriers.plivo_carrier import PlivoCarrier
        from telephony_bridge.carriers.vonage_carrier import VonageCarrier
        PlivoCarrier({"PLIVO_AUTH_TOKEN": "token"})
        VonageCarrier({"VONAGE_SIGNATURE_SECRET": "secret"})
    """) == {"plivo", "vonage_jwt", "vonage_voice"}
    assert loaded_after("""
        from telephony_bridge.carriers.twilio_carrier import TwilioCarrier
        TwilioCarrier({"TWILIO_AUTH_TOKEN": "token"})
    """) == {"twilio.rest"}


def test_an_unconfigured_carrier_loads_its_sdk_on_first_use():
    assert loaded_after("""
        from telephony_bridge.carriers.plivo_carrier import PlivoCarrier
        carrier = PlivoCarrier({})
        assert "<Stream" in carrier.answer_document("wss://bridge.example/plivo/media-stream", "t").body
    """) == {"plivo"}
