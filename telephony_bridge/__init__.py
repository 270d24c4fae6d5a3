"""telephony_bridge: phone calls to realtime voice models."""

__version__ = "0.1.0"
