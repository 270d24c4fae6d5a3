"""WebRTC plumbing shared by every WebRTC leg (the browser softphone, the model over WebRTC, the
local engine's WebRTC endpoint): peer connections with the project's ICE policy (peer.py) and the
conversion between WebRTC audio frames and the project's PCM16 bytes (audio_frames.py).

Built on aiortc. Nothing here knows what is at the other end of a peer connection.
"""
