"""The simulator profiles of the carriers (testing/carrier_profile.py), by carrier name.

Adding a carrier: its profile module here, and one line below.
"""

from __future__ import annotations

from telephony_bridge.testing.carrier_profile import CarrierProfile
from telephony_bridge.testing.profiles.audiosocket import AudioSocketProfile
from telephony_bridge.testing.profiles.exotel import ExotelProfile
from telephony_bridge.testing.profiles.plivo import PlivoProfile
from telephony_bridge.testing.profiles.signalwire import SignalWireProfile
from telephony_bridge.testing.profiles.telnyx import TelnyxProfile
from telephony_bridge.testing.profiles.twilio import TwilioProfile
from telephony_bridge.testing.profiles.vonage import VonageProfile

__all__ = ["PROFILES"]

PROFILES: dict[str, type[CarrierProfile]] = {}
PROFILES["twilio"] = TwilioProfile
PROFILES["telnyx"] = TelnyxProfile
PROFILES["signalwire"] = SignalWireProfile
PROFILES["vonage"] = VonageProfile
PROFILES["plivo"] = PlivoProfile
PROFILES["exotel"] = ExotelProfile
PROFILES["audiosocket"] = AudioSocketProfile  # TCP, no answer request: testing/simulator_tcp.py
