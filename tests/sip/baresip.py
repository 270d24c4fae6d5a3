"""baresip (a real softphone) driven from a test: its control socket (ctrl_tcp, netstring JSON),
its microphone a WAV (aufile, switchable mid-call), and what it heard recorded by its sndfile
module (the decoded far-end audio, written as it is played)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import struct
import wave
from pathlib import Path
from typing import Any

import pytest

from telephony_bridge.testing.processes import free_port

BARESIP = shutil.which("baresip")
MODULES = Path("/usr/lib/baresip/modules")
needs_baresip = pytest.mark.skipif(
    BARESIP is None or not (MODULES / "aufile.so").exists(),
    reason="baresip is not installed: apt-get install -y baresip (.ci/run does it)",
)


def write_wav(path: Path, pcm16_8k: bytes) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(pcm16_8k)


class Baresip:
    def __init__(self, workdir: Path, microphone: Path) -> None:
        self.workdir = workdir
        self.control_port = free_port(socket.SOCK_STREAM)
        self.recordings = workdir / "recordings"
        self.recordings.mkdir()
        (workdir / "accounts").write_text("<sip:caller@127.0.0.1>;regint=0;audio_codecs=PCMU\n")
        modules = ("g711", "aufile", "aubridge", "sndfile", "account", "menu", "ctrl_tcp")
        (workdir / "config").write_text(
            "\n".join(
                [
                    "poll_method epoll",
                    f"sip_listen 127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
                    f"audio_source aufile,{microphone}",
                    "audio_player aubridge,nil",  # no sound card: the recording is sndfile's
                    f"module_path {MODULES}",
                    *(f"module {name}.so" for name in modules),
                    f"snd_path {self.recordings}",
                    f"ctrl_tcp_listen 127.0.0.1:{self.control_port}",
                    "",
                ]
            )
        )
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.events: list[dict[str, Any]] = []
        self._responses: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Baresip:
        assert BARESIP is not None
        self.process = await asyncio.create_subprocess_exec(
            BARESIP, "-f", str(self.workdir), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        async with asyncio.timeout(10):
            while True:
                try:
                    self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.control_port)
                    break
                except OSError:
                    await asyncio.sleep(0.05)  # baresip is starting
        self._pump = asyncio.create_task(self._read_events())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pump is not None:
            self._pump.cancel()
        if self._writer is not None:
            self._writer.close()
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()

    async def command(self, name: str, params: str = "") -> dict[str, Any]:
        assert self._writer is not None
        body = json.dumps({"command": name, "params": params, "token": name}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        async with asyncio.timeout(5):
            return await self._responses.get()

    async def _read_events(self) -> None:
        assert self._reader is not None
        while True:
            length = await self._reader.readuntil(b":")
            body = await self._reader.readexactly(int(length[:-1]) + 1)
            message = json.loads(body[:-1])
            if message.get("response"):
                await self._responses.put(message)
            else:
                self.events.append(message)
                if message.get("type") == "CALL_CLOSED":
                    self.closed.set()

    def heard(self) -> list[int]:
        """The samples baresip has played so far (its decoded far-end audio), as written."""
        files = sorted(self.recordings.glob("*-dec.wav"))
        if not files:
            return []
        data = files[-1].read_bytes()[44:]  # a canonical WAV header; the data grows behind it
        data = data[: len(data) // 2 * 2]
        return list(struct.unpack(f"<{len(data) // 2}h", data))
