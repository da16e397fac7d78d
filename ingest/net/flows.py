"""Packets to records: header decoding, the flow table, and DNS/HTTP/TLS extraction.

The hot path is :meth:`FlowEngine.feed`: one Python loop that decodes link, IP and
TCP/UDP headers by indexing bytes (no scapy objects, no per-packet allocations beyond the
flow key), updates a bidirectional flow, and hands payloads to the application decoders
only where they can matter (UDP port 53, and the first data segments of TCP flows).

Flows are Zeek ``conn.log``-like: originator = sender of the first packet (or the receiver
of a first SYN-ACK), bytes and packets per direction (IP bytes, as Zeek's ``*_ip_bytes``,
and payload bytes), TCP history letters (``ShADadFf``: upper case from the originator) and
connection state (``S0``, ``SF``, ``REJ``, ``RSTO``...), and the Community ID. A flow is
exported when idle for ``idle_timeout``, every ``active_timeout`` while it lasts (its
counters restart), soon after it closed (FIN both ways or RST), when the table is full
(oldest first: the table is bounded, nothing is dropped) and at the end of input.

Records are plain dicts shaped as socflow events (see :mod:`ingest.schema`); ``emit``
receives ``(kind, record, position)`` with ``position`` a deterministic name for the
record (its first packet number and kind), which the sensor turns into ``event.id``.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterable
from typing import Any

from ingest.errors import ParseError
from ingest.net import protocols
from ingest.normalize import epoch_timestamp

Emit = Callable[[str, dict[str, Any], str], None]
# (source and destination address bytes, source port, destination port, IP protocol)
FlowKey = tuple[bytes, int, int, int]

# TCP flag bits and the history letters they produce (originator upper case).
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_H_SYN, _H_SYNACK, _H_ACK, _H_DATA, _H_FIN, _H_RST = 1, 2, 4, 8, 16, 32
_LETTERS = ((_H_SYN, "S"), (_H_SYNACK, "H"), (_H_ACK, "A"), (_H_DATA, "D"), (_H_FIN, "F"), (_H_RST, "R"))
_H_CLOSING = _H_FIN | _H_RST
_CLOSING_BITS = _H_CLOSING | _H_CLOSING << 8  # either direction
_FIN_BOTH = _H_FIN | _H_FIN << 8


def _flag_bits(flags: int, payload: bool) -> int:
    """History bits of one TCP segment (precomputed per flag byte: the hot loop only indexes)."""
    if flags & SYN:
        bits = _H_SYNACK if flags & ACK else _H_SYN
    elif flags & RST:
        bits = _H_RST
    elif flags & FIN:
        bits = _H_FIN
    elif payload:
        bits = _H_DATA
    elif flags & ACK:
        bits = _H_ACK
    else:
        bits = 0
    if flags & FIN:
        bits |= _H_FIN
    if flags & RST:
        bits |= _H_RST
    if payload:
        bits |= _H_DATA
    return bits


_BITS_EMPTY = [_flag_bits(flags, False) for flags in range(256)]
_BITS_DATA = [_flag_bits(flags, True) for flags in range(256)]
APP_INSPECT_PACKETS = 8  # data segments per direction looked at for HTTP/TLS
TLS_BUFFER = 16 * 1024
CLOSED_LINGER = 2.0  # seconds a closed TCP flow waits for stray packets before export

LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_RAW_ALT, LINKTYPE_SLL, LINKTYPE_SLL2, LINKTYPE_NULL = 1, 101, 12, 113, 276, 0
_IPV6_EXTENSIONS = {0, 43, 60, 51}
# Ethernet type; IPv4 version+IHL, total length, flags+fragment offset, protocol, both
# addresses; then the first 14 bytes of the transport header: ports, data offset, TCP flags.
_ETH_IPV4_L4 = struct.Struct("!12xHBxH2xHxB2x8sHH8xBB")


class Flow:
    """One bidirectional flow; ``key`` is oriented originator -> responder."""

    __slots__ = (
        "app",
        "cid",
        "closed",
        "first",
        "first_packet",
        "hist",
        "history",
        "key",
        "last",
        "o_bytes",
        "o_inspect",
        "o_payload",
        "o_pkts",
        "pending_http",
        "r_bytes",
        "r_inspect",
        "r_payload",
        "r_pkts",
        "rkey",
        "segment",
        "tls_buffer",
    )

    def __init__(self, key: FlowKey, rkey: FlowKey, ts: float, packet: int) -> None:
        self.key = key
        self.rkey = rkey
        self.cid: str | None = None  # Community ID, computed once when first needed
        self.first = self.last = ts
        self.first_packet = packet
        self.segment = 0
        self.o_pkts = self.o_bytes = self.o_payload = self.r_pkts = self.r_bytes = self.r_payload = 0
        # Bit set of history letters seen (SYN, SYNACK, ACK, data, FIN, RST): originator bits
        # low, responder bits << 8. It is also the per-direction flag summary conn_state reads.
        self.hist = 0
        self.history = ""
        # Payloads looked at per direction: the originator's first one decides whether this
        # is HTTP or TLS at all; the responder's only while HTTP requests wait for a status.
        self.o_inspect = APP_INSPECT_PACKETS
        self.r_inspect = 0
        self.closed = False
        self.app: str | None = None
        self.pending_http: list[dict[str, Any]] | None = None
        self.tls_buffer: bytes | None = None


def _ip(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _stamp(ts: float) -> str:
    return epoch_timestamp(ts)


def conn_state(flow: Flow) -> str:  # noqa: PLR0911, PLR0912 - Zeek's state table, case by case
    """Zeek's conn_state from what each side sent."""
    o, r = flow.hist & 0xFF, flow.hist >> 8
    o_syn, o_fin, o_rst = o & _H_SYN, o & _H_FIN, o & _H_RST
    r_synack, r_fin, r_rst = r & _H_SYNACK, r & _H_FIN, r & _H_RST
    if not o_syn and not r_synack:
        return "OTH"
    if o_syn and not r_synack:
        if r_rst:
            return "REJ"
        if o_rst:
            return "RSTOS0"
        if o_fin:
            return "SH"
        return "S0"
    if r_synack and not o_syn:
        if r_rst:
            return "RSTRH"
        if r_fin:
            return "SHR"
        return "OTH"
    if o_rst:
        return "RSTO"
    if r_rst:
        return "RSTR"
    if o_fin and r_fin:
        return "SF"
    if o_fin:
        return "S2"
    if r_fin:
        return "S3"
    return "S1"


class FlowEngine:
    """The flow table and the per-packet loop; see the module docstring."""

    def __init__(self, emit: Emit, *, idle_timeout: float = 60.0, active_timeout: float = 300.0,
                 max_flows: int = 200_000, linktype: int = LINKTYPE_ETHERNET) -> None:
        self.emit = emit
        self.idle = idle_timeout
        self.active = active_timeout
        self.max_flows = max_flows
        self.linktype = linktype
        self.flows: dict[FlowKey, Flow] = {}
        self.reverse: dict[FlowKey, Flow] = {}
        self.packets = 0
        self.undecoded = 0
        self.evicted = 0
        self.app_errors = 0
        self.now = 0.0
        self._next_sweep = 0.0

    # -- the hot loop ---------------------------------------------------------------------------
    def feed(self, packets: Iterable[tuple[float, bytes]]) -> int:  # noqa: PLR0912, PLR0915 - the inlined hot loop
        """Account every packet; returns how many were read. Decoding is inlined for speed."""
        flows, reverse = self.flows, self.reverse
        ethernet = self.linktype == LINKTYPE_ETHERNET
        fast_headers = _ETH_IPV4_L4.unpack_from
        decode = self._decode
        count = self.packets
        undecoded = 0
        next_sweep = self._next_sweep
        for ts, data in packets:
            count += 1
            if ts >= next_sweep:
                self.now = ts
                self.packets = count
                self.sweep(ts)
                next_sweep = self._next_sweep
            length = len(data)
            # -- Ethernet + IPv4 without options (nearly all traffic): one struct call reads every
            # field up to the TCP flags; UDP and ICMP use the leading fields of the same read.
            if ethernet and length >= _ETH_IPV4_L4.size:
                etype, vihl, ip_len, frag, proto, addresses, sport, dport, doff, flags = fast_headers(data)
                fast = etype == 0x0800 and vihl == 0x45
            else:
                fast = False
            if fast:
                off = 14
                end = 14 + ip_len if ip_len and 14 + ip_len < length else length
                payload_start = payload_end = 0
                if frag & 0x1FFF:  # a later fragment has no L4 header: accounted to the IP pair
                    sport = dport = flags = 0
                elif proto == 6:
                    if end < 54:
                        undecoded += 1
                        continue
                    payload_start, payload_end = 34 + (doff >> 4) * 4, end
                elif proto == 17:
                    if end < 42:
                        undecoded += 1
                        continue
                    flags = 0
                    payload_start, payload_end = 42, end
                elif proto in (1, 58) and end >= 36:
                    sport, dport, flags = data[34], data[35], 0  # ICMP type and code, as Community ID does
                else:
                    sport = dport = flags = 0
            else:
                decoded = decode(data, length)
                if decoded is None:
                    undecoded += 1
                    continue
                off, end, proto, addresses, sport, dport, flags, payload_start, payload_end = decoded
            # -- flow lookup
            key = (addresses, sport, dport, proto)
            flow = flows.get(key)
            if flow is not None:
                orig = True
            else:
                flow = reverse.get(key)
                if flow is not None:
                    orig = False
                else:
                    if len(flows) >= self.max_flows:
                        self._evict()
                    half = len(addresses) >> 1
                    swapped = (addresses[half:] + addresses[:half], dport, sport, proto)
                    if proto == 6 and flags & (SYN | ACK) == SYN | ACK:
                        # A SYN-ACK first: its receiver opened the connection.
                        key, swapped = swapped, key
                        orig = False
                    else:
                        orig = True
                    flow = Flow(key, swapped, ts, count)
                    flows[key] = flow
                    reverse[swapped] = flow
            flow.last = ts
            size = end - off
            payload = payload_end - payload_start if payload_end > payload_start else 0
            if orig:
                flow.o_pkts += 1
                flow.o_bytes += size
                flow.o_payload += payload
            else:
                flow.r_pkts += 1
                flow.r_bytes += size
                flow.r_payload += payload
            if proto == 6:
                bits = _BITS_DATA[flags] if payload else _BITS_EMPTY[flags]
                if not orig:
                    bits <<= 8
                if bits & ~flow.hist:
                    # Only a new history letter can close the flow: the first RST, or the FIN
                    # that completes FINs both ways.
                    self._history(flow, bits, orig)
                    if bits & _CLOSING_BITS and (flags & RST or flow.hist & _FIN_BOTH == _FIN_BOTH):
                        flow.closed = True
                if payload and (flow.o_inspect if orig else flow.r_inspect) > 0:
                    self._tcp_payload(flow, orig, data[payload_start:payload_end], ts, count)
            elif proto == 17 and payload and (sport == 53 or dport == 53 or sport == 5353 or dport == 5353):
                self._dns(flow, data[payload_start:payload_end], ts, count, addresses, sport=sport, dport=dport)
        self.packets = count
        self.undecoded += undecoded
        return count

    def _decode(  # noqa: PLR0911, PLR0912, PLR0915 - one branch per header variant
        self, data: bytes, length: int
    ) -> tuple[int, int, int, bytes, int, int, int, int, int] | None:
        """Every frame the fast path in :meth:`feed` does not take: other link types, VLAN tags,
        IPv4 options, IPv6 and its extension headers, short frames.

        Returns ``(ip offset, ip end, protocol, addresses, sport, dport, tcp flags, payload
        start, payload end)``, or None for a frame that cannot be decoded.
        """
        linktype = self.linktype
        # -- link layer
        if linktype == LINKTYPE_ETHERNET:
            if length < 14:
                return None
            etype = (data[12] << 8) | data[13]
            off = 14
            while etype in (0x8100, 0x88A8) and off + 4 <= length:  # VLAN tags
                etype = (data[off + 2] << 8) | data[off + 3]
                off += 4
        elif linktype in (LINKTYPE_RAW, LINKTYPE_RAW_ALT):
            off = 0
            etype = 0x0800 if length and data[0] >> 4 == 4 else 0x86DD
        elif linktype == LINKTYPE_SLL:
            off, etype = 16, ((data[14] << 8) | data[15]) if length >= 16 else 0
        elif linktype == LINKTYPE_SLL2:
            off, etype = 20, ((data[0] << 8) | data[1]) if length >= 20 else 0
        elif linktype == LINKTYPE_NULL:
            off = 4
            etype = 0x0800 if length > 4 and data[4] >> 4 == 4 else 0x86DD
        else:
            return None
        # -- IP
        if etype == 0x0800:
            if off + 20 > length:
                return None
            ihl = (data[off] & 0x0F) * 4
            ip_len = (data[off + 2] << 8) | data[off + 3]
            proto = data[off + 9]
            addresses = data[off + 12:off + 20]  # source and destination in one slice
            l4 = off + ihl
            end = off + ip_len if ip_len and off + ip_len < length else length
            # A later fragment has no L4 header: it is accounted to the IP pair.
            proto_ok = not (((data[off + 6] & 0x1F) << 8) | data[off + 7])
        elif etype == 0x86DD:
            if off + 40 > length:
                return None
            ip_len = ((data[off + 4] << 8) | data[off + 5]) + 40
            proto = data[off + 6]
            addresses = data[off + 8:off + 40]
            l4 = off + 40
            end = off + ip_len if off + ip_len < length else length
            proto_ok = True
            hops = 0
            while proto in _IPV6_EXTENSIONS and l4 + 8 <= end and hops < 8:
                proto = data[l4]
                l4 += (data[l4 + 1] + 1) * 8 if proto != 51 else (data[l4 + 1] + 2) * 4
                hops += 1
            if proto == 44:  # fragment header
                if l4 + 8 > end:
                    return None
                proto_ok = not (((data[l4 + 2] << 8) | data[l4 + 3]) & 0xFFF8)
                proto = data[l4]
                l4 += 8
        else:
            return None
        # -- transport
        flags = payload_start = payload_end = 0
        if not proto_ok:
            sport = dport = 0
        elif proto == 6:
            if l4 + 20 > end:
                return None
            sport = (data[l4] << 8) | data[l4 + 1]
            dport = (data[l4 + 2] << 8) | data[l4 + 3]
            flags = data[l4 + 13]
            payload_start = l4 + ((data[l4 + 12] >> 4) * 4)
            payload_end = end
        elif proto == 17:
            if l4 + 8 > end:
                return None
            sport = (data[l4] << 8) | data[l4 + 1]
            dport = (data[l4 + 2] << 8) | data[l4 + 3]
            payload_start = l4 + 8
            payload_end = end
        elif proto in (1, 58) and l4 + 2 <= end:
            sport, dport = data[l4], data[l4 + 1]  # ICMP type and code, as Community ID does
        else:
            sport = dport = 0
        return off, end, proto, addresses, sport, dport, flags, payload_start, payload_end

    # -- per-flow helpers (off the hot path) ------------------------------------------------------
    @staticmethod
    def _history(flow: Flow, shifted: int, orig: bool) -> None:
        new = shifted & ~flow.hist
        flow.hist |= shifted
        bits = new if orig else new >> 8
        for bit, letter in _LETTERS:
            if bits & bit:
                flow.history += letter if orig else letter.lower()

    def _tcp_payload(  # noqa: PLR0912 - one branch per protocol step
        self, flow: Flow, orig: bool, payload: bytes, ts: float, packet: int
    ) -> None:
        if orig:
            flow.o_inspect -= 1
        else:
            flow.r_inspect -= 1
        try:
            if orig:
                if flow.tls_buffer is not None:
                    payload = flow.tls_buffer + payload
                    flow.tls_buffer = None
                if protocols.is_http_request(payload):
                    request = protocols.parse_http_request(payload)
                    flow.app = "http"
                    if flow.pending_http is None:
                        flow.pending_http = []
                    request["_ts"], request["_packet"] = ts, packet
                    flow.pending_http.append(request)
                    flow.o_inspect = APP_INSPECT_PACKETS  # keep-alive: more requests may follow
                    flow.r_inspect = APP_INSPECT_PACKETS
                    return
                needed = protocols.client_hello_length(payload)
                if needed is not None:
                    if len(payload) < needed:
                        if len(payload) < TLS_BUFFER:
                            flow.tls_buffer = payload  # a hello split over segments
                        return
                    hello = protocols.parse_client_hello(payload)
                    flow.app = "tls"
                    flow.o_inspect = 0
                    self._emit_tls(flow, hello, ts, packet)
                elif flow.app is None:
                    flow.o_inspect = 0  # neither HTTP nor TLS from the first payload on: stop looking
            else:
                status = protocols.parse_http_status(payload)
                if status is not None and flow.pending_http:
                    request = flow.pending_http.pop(0)
                    request["status"] = status
                    self._emit_http(flow, request)
                    flow.r_inspect = APP_INSPECT_PACKETS if flow.pending_http else 0
        except ParseError:
            self.app_errors += 1

    def _base(self, flow: Flow, ts: float) -> dict[str, Any]:
        addresses, sport, dport, proto = flow.key
        half = len(addresses) >> 1
        src, dst = addresses[:half], addresses[half:]
        if flow.cid is None:
            flow.cid = protocols.community_id(src, dst, proto, sport, dport)
        record: dict[str, Any] = {
            "@timestamp": _stamp(ts),
            "source": {"ip": _ip(src), "port": sport},
            "destination": {"ip": _ip(dst), "port": dport},
            "network": {"transport": _TRANSPORT.get(proto, str(proto)), "iana_number": str(proto),
                        "type": "ipv4" if len(src) == 4 else "ipv6", "community_id": flow.cid},
        }
        return record

    def _emit_http(self, flow: Flow, request: dict[str, Any]) -> None:
        record = self._base(flow, request["_ts"])
        target = request["target"]
        path, question, query = target.partition("?")
        url: dict[str, Any] = {"original": target, "path": path}
        if question:
            url["query"] = query
        if "host" in request:
            url["domain"] = request["host"].rsplit(":", 1)[0] if "]" not in request["host"] else request["host"]
        http: dict[str, Any] = {"request": {"method": request["method"]}, "version": request["version"]}
        if "referrer" in request:
            http["request"]["referrer"] = request["referrer"]
        if "status" in request:
            http["response"] = {"status_code": request["status"]}
        record["url"] = url
        record["http"] = http
        record["network"]["protocol"] = "http"
        if "user_agent" in request:
            record["user_agent"] = {"original": request["user_agent"]}
        record["event"] = {"kind": "event", "category": ["network", "web"], "dataset": "sensor.http",
                           "module": "sensor"}
        record["socflow"] = {"logsource": {"product": "zeek", "service": "http"}}
        self.emit("http", record, f"http:{request['_packet']}")

    def _emit_tls(self, flow: Flow, hello: dict[str, Any], ts: float, packet: int) -> None:
        record = self._base(flow, ts)
        client: dict[str, Any] = {"ja3": hello["ja3"], "supported_ciphers": hello["supported_ciphers"]}
        if "server_name" in hello:
            client["server_name"] = hello["server_name"]
        record["tls"] = {"client": client, "version": hello["version"], "version_protocol": "tls"}
        if "alpn" in hello:
            record["tls"]["client"]["alpn"] = hello["alpn"]
        record["network"]["protocol"] = "tls"
        record["event"] = {"kind": "event", "category": ["network"], "dataset": "sensor.tls", "module": "sensor",
                           "original": hello["ja3_string"]}
        record["socflow"] = {"logsource": {"product": "zeek", "service": "ssl"}}
        self.emit("tls", record, f"tls:{packet}")

    def _dns(self, flow: Flow, payload: bytes, ts: float, packet: int, addresses: bytes, *, sport: int,
             dport: int) -> None:
        try:
            dns = protocols.parse_dns(payload)
        except ParseError:
            self.app_errors += 1
            return
        flow.app = "dns"
        proto = flow.key[3]
        half = len(addresses) >> 1
        src, dst = addresses[:half], addresses[half:]
        if flow.cid is None:
            flow.cid = protocols.community_id(src, dst, proto, sport, dport)
        record: dict[str, Any] = {
            "@timestamp": _stamp(ts),
            "source": {"ip": _ip(src), "port": sport},
            "destination": {"ip": _ip(dst), "port": dport},
            "network": {"transport": "udp", "iana_number": "17", "protocol": "dns",
                        "type": "ipv4" if len(src) == 4 else "ipv6",
                        "community_id": flow.cid},
            "dns": dns,
            "event": {"kind": "event", "category": ["network"], "dataset": "sensor.dns", "module": "sensor"},
            "socflow": {"logsource": {"category": "dns"}},
        }
        self.emit("dns", record, f"dns:{packet}")

    # -- export ------------------------------------------------------------------------------------
    def _export(self, flow: Flow, final: bool) -> None:
        if flow.pending_http:
            for request in flow.pending_http:
                self._emit_http(flow, request)
            flow.pending_http = []
        proto = flow.key[3]
        duration = max(0.0, flow.last - flow.first)
        record = self._base(flow, flow.first)
        record["source"].update(bytes=flow.o_bytes, packets=flow.o_pkts)
        record["destination"].update(bytes=flow.r_bytes, packets=flow.r_pkts)
        network = record["network"]
        network["bytes"] = flow.o_bytes + flow.r_bytes
        network["packets"] = flow.o_pkts + flow.r_pkts
        if flow.app:
            network["protocol"] = flow.app
        conn: dict[str, Any] = {"orig_bytes": flow.o_payload, "resp_bytes": flow.r_payload}
        if proto == 6:
            conn["state"] = conn_state(flow)
            conn["history"] = flow.history
        if flow.segment:
            conn["segment"] = flow.segment
        record["event"] = {"kind": "event", "category": ["network"], "type": ["connection"],
                           "dataset": "sensor.conn", "module": "sensor", "start": record["@timestamp"],
                           "end": _stamp(flow.last), "duration": int(duration * 1e9)}
        record["sensor"] = {"conn": conn}
        record["socflow"] = {"logsource": {"product": "zeek", "service": "conn"}}
        self.emit("conn", record, f"conn:{flow.first_packet}:{flow.segment}")
        if not final:
            # Active timeout: the flow goes on with fresh counters.
            flow.segment += 1
            flow.first = flow.last
            flow.o_pkts = flow.o_bytes = flow.o_payload = flow.r_pkts = flow.r_bytes = flow.r_payload = 0

    def _remove(self, flow: Flow) -> None:
        self.flows.pop(flow.key, None)
        self.reverse.pop(flow.rkey, None)

    def _evict(self) -> None:
        # The table is full: export the oldest-created flow now rather than drop anything.
        oldest = next(iter(self.flows.values()))
        self._export(oldest, final=True)
        self._remove(oldest)
        self.evicted += 1

    def sweep(self, now: float) -> None:
        """Export idle, closed and long-active flows (called about once a second of packet time)."""
        self._next_sweep = now + 1.0
        idle, active = self.idle, self.active
        expired = [flow for flow in self.flows.values()
                   if now - flow.last >= idle or (flow.closed and now - flow.last >= CLOSED_LINGER)]
        for flow in expired:
            self._export(flow, final=True)
            self._remove(flow)
        for flow in self.flows.values():
            if now - flow.first >= active:
                self._export(flow, final=False)

    def flush(self) -> None:
        """End of input: export every flow."""
        for flow in list(self.flows.values()):
            self._export(flow, final=True)
        self.flows.clear()
        self.reverse.clear()


_TRANSPORT = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp", 47: "gre", 50: "esp", 132: "sctp"}
