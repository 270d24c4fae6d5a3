"""The carriers the bridge answers for. Adding one: its files under carriers/, and a line here."""

from __future__ import annotations

from telephony_bridge.carriers.audiosocket_carrier import AudioSocketCarrier
from telephony_bridge.carriers.base import Carrier
from telephony_bridge.carriers.exotel_carrier import ExotelCarrier
from telephony_bridge.carriers.plivo_carrier import PlivoCarrier
from telephony_bridge.carriers.signalwire_carrier import SignalWireCarrier
from telephony_bridge.carriers.sip.carrier import SipCarrier
from telephony_bridge.carriers.telnyx_carrier import TelnyxCarrier
from telephony_bridge.carriers.twilio_carrier import TwilioCarrier
from telephony_bridge.carriers.vonage_carrier import VonageCarrier
from telephony_bridge.carriers.webrtc import WebRtcCarrier

__all__ = ["CARRIERS"]

CARRIERS: tuple[type[Carrier], ...] = (
    TwilioCarrier,
    TelnyxCarrier,
    SignalWireCarrier,
    VonageCarrier,
    PlivoCarrier,
    ExotelCarrier,
    AudioSocketCarrier,  # no HTTP endpoint: its TCP listeners are server/audiosocket.py's
    SipCarrier,  # no HTTP endpoint: its SIP listeners are server/sip_listener.py's
    WebRtcCarrier,  # no carrier webhook: the browser softphone's signalling is server/softphone.py's
)
