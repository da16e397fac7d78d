"""Pcaps crafted with scapy for the sensor tests and the benchmark (no third-party captures).

``scenario()`` is one small network conversation with known answers: a TCP connection
carrying an HTTP request and response, closed with FINs; a DNS query and its answer; a TLS
ClientHello with SNI; a rejected connection (SYN, RST); and a UDP flow without a reply.
"""

from __future__ import annotations

import random
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

CLIENT, SERVER, RESOLVER = "10.20.3.15", "10.10.1.20", "10.10.10.53"
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
HTTP_REQUEST = (b"GET /dichvucong/search?q=test HTTP/1.1\r\nHost: portal.hoagiang.gov.vn\r\n"
                b"User-Agent: Mozilla/5.0 (socflow-test)\r\nAccept: */*\r\n\r\n")
HTTP_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
SNI = "mail.hoagiang.gov.vn"


def client_hello(server_name: str = SNI) -> bytes:
    """A TLS 1.2/1.3 ClientHello record with SNI, groups, point formats and a GREASE value."""
    def ext(kind: int, body: bytes) -> bytes:
        return kind.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body

    name = server_name.encode()
    sni = ext(0, (len(name) + 3).to_bytes(2, "big") + b"\x00" + len(name).to_bytes(2, "big") + name)
    groups = ext(10, (6).to_bytes(2, "big") + bytes.fromhex("0a0a001d0017"))
    formats = ext(11, b"\x01\x00")
    versions = ext(43, b"\x04\x03\x04\x03\x03")
    grease = ext(0x1A1A, b"")
    extensions = grease + sni + groups + formats + versions
    ciphers = bytes.fromhex("2a2a130113021303c02bc02f")
    body = (b"\x03\x03" + bytes(32) + b"\x00" + len(ciphers).to_bytes(2, "big") + ciphers + b"\x01\x00"
            + len(extensions).to_bytes(2, "big") + extensions)
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


# JA3 of client_hello(): version 771, GREASE removed from ciphers, extensions and groups.
JA3_STRING = "771,4865-4866-4867-49195-49199,0-10-11-43,29-23,0"


def tcp_session(client: str, server: str, sport: int, dport: int, request: bytes, response: bytes,
                start: float, *, mac: tuple[str, str] = (CLIENT_MAC, SERVER_MAC)) -> list[Packet]:
    """A full TCP conversation: handshake, one request and response, FIN both ways."""
    c, s = Ether(src=mac[0], dst=mac[1]) / IP(src=client, dst=server), Ether(src=mac[1], dst=mac[0]) / IP(
        src=server, dst=client)
    cseq, sseq = 1000, 5000
    packets = [
        c / TCP(sport=sport, dport=dport, flags="S", seq=cseq),
        s / TCP(sport=dport, dport=sport, flags="SA", seq=sseq, ack=cseq + 1),
        c / TCP(sport=sport, dport=dport, flags="A", seq=cseq + 1, ack=sseq + 1),
        c / TCP(sport=sport, dport=dport, flags="PA", seq=cseq + 1, ack=sseq + 1) / Raw(request),
        s / TCP(sport=dport, dport=sport, flags="A", seq=sseq + 1, ack=cseq + 1 + len(request)),
    ]
    if response:
        packets.append(s / TCP(sport=dport, dport=sport, flags="PA", seq=sseq + 1, ack=cseq + 1 + len(request))
                       / Raw(response))
    cend, send = cseq + 1 + len(request), sseq + 1 + len(response)
    packets += [
        c / TCP(sport=sport, dport=dport, flags="A", seq=cend, ack=send),
        c / TCP(sport=sport, dport=dport, flags="FA", seq=cend, ack=send),
        s / TCP(sport=dport, dport=sport, flags="FA", seq=send, ack=cend + 1),
        c / TCP(sport=sport, dport=dport, flags="A", seq=cend + 1, ack=send + 1),
    ]
    for index, packet in enumerate(packets):
        packet.time = start + index * 0.001
    return packets


def dns_exchange(start: float, name: str = "portal.hoagiang.gov.vn", answer: str = SERVER,
                 sport: int = 53001, ident: int = 0x1234) -> list[Packet]:
    query = (Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=CLIENT, dst=RESOLVER)
             / UDP(sport=sport, dport=53) / DNS(id=ident, rd=1, qd=DNSQR(qname=name, qtype="A")))
    reply = (Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src=RESOLVER, dst=CLIENT)
             / UDP(sport=53, dport=sport) / DNS(id=ident, qr=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype="A"),
                                               an=DNSRR(rrname=name, type="A", ttl=300, rdata=answer)))
    query.time, reply.time = start, start + 0.002
    return [query, reply]


def scenario(start: float = 1_763_800_000.0) -> list[Packet]:
    packets: list[Packet] = []
    packets += dns_exchange(start)
    packets += tcp_session(CLIENT, SERVER, 40001, 80, HTTP_REQUEST, HTTP_RESPONSE, start + 0.1)
    tls = tcp_session(CLIENT, SERVER, 40002, 443, client_hello(), b"\x16\x03\x03\x00\x04\x02\x00\x00\x00",
                      start + 0.2)
    packets += tls
    syn = Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=CLIENT, dst=SERVER) / TCP(sport=40003, dport=3389,
                                                                                      flags="S", seq=1)
    rst = Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src=SERVER, dst=CLIENT) / TCP(sport=3389, dport=40003,
                                                                                      flags="RA", ack=2)
    syn.time, rst.time = start + 0.3, start + 0.301
    udp = Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=CLIENT, dst=SERVER) / UDP(sport=40004, dport=514) / Raw(
        b"<13>hello")
    udp.time = start + 0.4
    packets += [syn, rst, udp]
    return packets


def write_scenario(path: Path) -> Path:
    wrpcap(str(path), scenario())
    return path


def bulk(path: Path, flows: int = 20_000, packets_per_flow: int = 40, seed: int = 7) -> Path:
    """A larger capture for the benchmark: many TCP flows of mixed sizes, DNS, HTTP and TLS.

    Frames are built once with scapy and then copied with patched addresses and ports (IP and
    TCP checksums are left stale: nothing here validates them), which is fast enough for
    millions of packets.
    """
    rng = random.Random(seed)
    http = [bytes(p) for p in tcp_session(CLIENT, SERVER, 1, 80, HTTP_REQUEST, HTTP_RESPONSE, 0.0)]
    tls = [bytes(p) for p in tcp_session(CLIENT, SERVER, 1, 443, client_hello(), b"\x16\x03\x03\x00\x04"
                                         b"\x02\x00\x00\x00", 0.0)]
    smb = [bytes(p) for p in tcp_session(CLIENT, SERVER, 1, 445, b"x" * 100, b"", 0.0)]
    data_segment = bytearray(smb[3])
    data_segment[54:] = bytes(rng.getrandbits(8) for _ in range(len(data_segment) - 54))
    data_segment += bytes(1100)
    data_segment[16:18] = (len(data_segment) - 14).to_bytes(2, "big")
    dns = [bytes(p) for p in dns_exchange(0.0)]
    client_ip = bytes(map(int, CLIENT.split(".")))
    timed: list[tuple[float, bytes]] = []
    start = 1_763_800_000.0
    for index in range(flows):
        client = bytes((10, 20, rng.randint(1, 180), rng.randint(2, 250)))
        server = bytes((10, 10, rng.randint(1, 6), rng.randint(2, 250)))
        port = (20000 + index % 40000).to_bytes(2, "big")
        t0 = start + index * 0.002
        kind = index % 10
        if kind == 0:
            frames = http
        elif kind == 1:
            frames = tls
        elif kind == 2:
            frames = dns
        else:
            frames = smb[:4] + [bytes(data_segment)] * (packets_per_flow - len(smb)) + smb[4:]
        for offset, frame in enumerate(frames):
            patched = bytearray(frame)
            if patched[26:30] == client_ip:
                patched[26:30], patched[30:34], patched[34:36] = client, server, port
            else:
                patched[26:30], patched[30:34], patched[36:38] = server, client, port
            timed.append((t0 + offset * 0.0005, bytes(patched)))
    timed.sort(key=lambda item: item[0])
    write_raw(path, timed)
    return path


def write_raw(path: Path, packets: list[tuple[float, bytes]]) -> None:
    """Classic pcap (Ethernet) from ``(timestamp, frame)`` pairs."""
    import struct

    with path.open("wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, frame in packets:
            seconds = int(ts)
            micros = round((ts - seconds) * 1e6)
            handle.write(struct.pack("<IIII", seconds, micros, len(frame), len(frame)))
            handle.write(frame)
