"""VoxEngine's application and call events (the names scenarios listen for)."""

from __future__ import annotations

from enum import Enum


class AppEvents(str, Enum):
    Started = "AppEvents.Started"
    CallAlerting = "AppEvents.CallAlerting"
    HttpRequest = "AppEvents.HttpRequest"
    Terminating = "AppEvents.Terminating"
    Terminated = "AppEvents.Terminated"


class CallEvents(str, Enum):
    Connected = "CallEvents.Connected"
    Disconnected = "CallEvents.Disconnected"
    Failed = "CallEvents.Failed"
    Ringing = "CallEvents.Ringing"  # an outbound call rings at the far end
    ToneReceived = "CallEvents.ToneReceived"
    PlaybackStarted = "CallEvents.PlaybackStarted"
    PlaybackFinished = "CallEvents.PlaybackFinished"
    RecordStarted = "CallEvents.RecordStarted"
    RecordStopped = "CallEvents.RecordStopped"
    RecordError = "CallEvents.RecordError"
    # The bridge's own: call.sendDigits on a carrier that cannot send DTMF ({digits, reason}).
    SendDigitsFailed = "CallEvents.SendDigitsFailed"
    TransferComplete = "CallEvents.TransferComplete"
    TransferFailed = "CallEvents.TransferFailed"


class CallState(str, Enum):
    ALERTING = "ALERTING"
    CONNECTED = "CONNECTED"
    TERMINATED = "TERMINATED"
