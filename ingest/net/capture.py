"""Packet sources of the sensor: pcap files and live interfaces, as ``(timestamp, bytes)``.

Classic pcap files are read here with ``mmap`` and ``struct`` (a 16-byte record header per
packet), which is several times faster than building scapy packets; pcapng files go through
scapy's raw reader. Live capture uses scapy's ``L2ListenSocket`` (a PF_PACKET socket with the
BPF filter compiled and attached in the kernel), taking raw frames only.
"""

from __future__ import annotations

import mmap
import select
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.errors import IngestError

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_SOL_PACKET, _PACKET_STATISTICS = 263, 6  # linux/if_packet.h


def pcap_linktype(path: Path) -> int:
    """Link type of a pcap or pcapng file (from its header or first interface)."""
    with path.open("rb") as handle:
        head = handle.read(24)
    if head[:4] in _PCAP_MAGICS:
        order = _PCAP_MAGICS[head[:4]][0]
        return int(struct.unpack(order + "I", head[20:24])[0]) & 0xFFFF
    if head[:4] == _PCAPNG_MAGIC:
        for _ts, _data, linktype in _pcapng(path):
            return linktype
        return 1
    raise IngestError("not a pcap or pcapng file", source=str(path))


def read_pcap(path: Path) -> Iterator[tuple[float, bytes]]:
    """``(timestamp, frame)`` of every packet; a truncated last record ends the iteration."""
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic == _PCAPNG_MAGIC:
        for ts, data, _ in _pcapng(path):
            yield ts, data
        return
    if magic not in _PCAP_MAGICS:
        raise IngestError("not a pcap or pcapng file", source=str(path))
    order, scale = _PCAP_MAGICS[magic]
    header = struct.Struct(order + "IIII")
    unpack = header.unpack_from
    with path.open("rb") as handle:
        if path.stat().st_size <= 24:
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            size = len(view)
            offset = 24
            while offset + 16 <= size:
                seconds, fraction, captured, _ = unpack(view, offset)
                offset += 16
                end = offset + captured
                if end > size:
                    return
                yield seconds + fraction * scale, view[offset:end]
                offset = end


def _pcapng(path: Path) -> Iterator[tuple[float, bytes, int]]:
    from scapy.utils import RawPcapNgReader  # scapy is slow to import; only pcapng needs it

    reader = RawPcapNgReader(str(path))
    try:
        for data, meta in reader:
            info: Any = meta  # scapy types it as the classic PacketMetadata; it is the pcapng one
            high = info.tshigh or 0
            ts = ((high << 32) | (info.tslow or 0)) / float(info.tsresol or 1_000_000)
            yield ts, bytes(data), int(info.linktype)
    finally:
        reader.close()


class BpfFilter:
    """A BPF filter compiled by libpcap and run on frames read from files (``pcap_offline_filter``).

    Live capture attaches the filter to the socket in the kernel; for pcap files this runs
    the same compiled program per frame in libpcap (about a microsecond each).
    """

    def __init__(self, expression: str, linktype: int) -> None:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("pcap")
        if name is None:
            raise IngestError("a BPF filter on a pcap file needs libpcap (installed with tcpdump/tshark)")
        lib = ctypes.CDLL(name)

        class Program(ctypes.Structure):
            _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]

        class TimeVal(ctypes.Structure):
            _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]

        class Header(ctypes.Structure):
            _fields_ = [("ts", TimeVal), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]

        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(Program), ctypes.c_char_p, ctypes.c_int,
                                     ctypes.c_uint32]
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        lib.pcap_offline_filter.argtypes = [ctypes.POINTER(Program), ctypes.POINTER(Header), ctypes.c_char_p]
        self._lib = lib
        self._handle = lib.pcap_open_dead(linktype, 262144)
        self._program = Program()
        if lib.pcap_compile(self._handle, ctypes.byref(self._program), expression.encode(), 1, 0xFFFFFFFF) != 0:
            error = (lib.pcap_geterr(self._handle) or b"?").decode(errors="replace")
            raise IngestError(f"invalid BPF filter {expression!r}: {error}")
        self._header = Header()
        self._program_ref = ctypes.byref(self._program)
        self._header_ref = ctypes.byref(self._header)

    def frames(self, frames: Iterator[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
        accept, header, program, header_ref = self._lib.pcap_offline_filter, self._header, self._program_ref, \
            self._header_ref
        for ts, data in frames:
            header.caplen = header.len = len(data)
            if accept(program, header_ref, bytes(data)):
                yield ts, data


class LiveCapture:
    """Frames from an interface through scapy's PF_PACKET socket with a kernel BPF filter."""

    def __init__(self, iface: str, bpf: str | None, stop: threading.Event) -> None:
        from scapy.arch.linux import L2ListenSocket  # scapy's PF_PACKET socket (Linux)

        try:
            self.socket: Any = L2ListenSocket(iface=iface, filter=bpf or None, promisc=True)
        except (OSError, PermissionError) as error:
            raise IngestError(f"cannot capture on {iface}: {error}") from error
        self.iface = iface
        self.stop = stop
        self.linktype = 1

    def frames(self, idle: float = 0.2) -> Iterator[tuple[float, bytes] | None]:
        """Frames as they arrive; ``None`` every ``idle`` seconds without traffic (for timeouts)."""
        sock = self.socket
        while not self.stop.is_set():
            ready, _, _ = select.select([sock], [], [], idle)
            if not ready:
                yield None
                continue
            # Drain what is queued without another select per frame.
            for _ in range(1024):
                try:
                    _cls, data, ts = sock.recv_raw(65535)
                except BlockingIOError:
                    break
                if data is None:
                    break
                yield (ts if ts is not None else time.time()), data
                ready, _, _ = select.select([sock], [], [], 0)
                if not ready:
                    break

    def kernel_drops(self) -> int:
        """Frames the kernel dropped since the last call (its buffer overflowed: we were slow)."""
        try:
            raw = self.socket.ins.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 8)
        except (OSError, AttributeError):
            return 0
        _received, dropped = struct.unpack("II", raw)  # reading resets the kernel's counters
        return int(dropped)

    def close(self) -> None:
        self.socket.close()
