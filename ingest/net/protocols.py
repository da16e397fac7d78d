"""Application-layer decoders of the network sensor: DNS, HTTP requests, TLS client hellos.

Written for the hot path: they read bytes with ``struct`` and slicing, never build objects
they do not return, and raise :class:`ingest.errors.ParseError` (only) on bad input. Full
scapy dissection costs tens of microseconds per packet; these cost a few.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from typing import Any

from ingest.errors import ParseError

_DNS_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
DNS_TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
             35: "NAPTR", 41: "OPT", 43: "DS", 46: "RRSIG", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS", 255: "ANY",
             257: "CAA"}
DNS_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
              6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE"}
MAX_QUESTIONS = 8
MAX_ANSWERS = 64


def _name(data: bytes, offset: int) -> tuple[str, int]:
    """A (possibly compressed) domain name at ``offset``; returns it and the offset after it."""
    labels: list[str] = []
    end = -1
    jumps = 0
    length = len(data)
    while True:
        if offset >= length:
            raise ParseError("DNS name runs past the message")
        size = data[offset]
        if size == 0:
            offset += 1
            break
        if size & 0xC0 == 0xC0:
            if offset + 1 >= length:
                raise ParseError("DNS compression pointer cut short")
            if end < 0:
                end = offset + 2
            jumps += 1
            if jumps > 32:
                raise ParseError("DNS compression loop")
            offset = ((size & 0x3F) << 8) | data[offset + 1]
            continue
        if size & 0xC0:
            raise ParseError("DNS label type not supported")
        offset += 1
        if offset + size > length:
            raise ParseError("DNS label runs past the message")
        labels.append(data[offset:offset + size].decode("ascii", "backslashreplace"))
        offset += size
        if len(labels) > 127:
            raise ParseError("DNS name too long")
    return ".".join(labels), (end if end >= 0 else offset)


def _rdata(data: bytes, offset: int, rtype: int, size: int) -> str:
    if rtype == 1 and size == 4:
        return socket.inet_ntop(socket.AF_INET, data[offset:offset + 4])
    if rtype == 28 and size == 16:
        return socket.inet_ntop(socket.AF_INET6, data[offset:offset + 16])
    if rtype in (2, 5, 12):
        return _name(data, offset)[0]
    if rtype == 15 and size >= 3:
        return f"{int.from_bytes(data[offset:offset + 2], 'big')} {_name(data, offset + 2)[0]}"
    if rtype == 16:
        parts: list[str] = []
        index, end = offset, offset + size
        while index < end:
            chunk = data[index]
            parts.append(data[index + 1:index + 1 + chunk].decode("utf-8", "replace"))
            index += 1 + chunk
        return "".join(parts)
    return data[offset:offset + size].hex()


def parse_dns(payload: bytes) -> dict[str, Any]:
    """A DNS message as ECS ``dns.*`` fields (``dns.type`` query/answer)."""
    if len(payload) < 12:
        raise ParseError("DNS message shorter than its header")
    ident, flags, qdcount, ancount, _, _ = _DNS_HEADER.unpack_from(payload)
    response = bool(flags & 0x8000)
    offset = 12
    dns: dict[str, Any] = {"id": ident, "type": "answer" if response else "query",
                           "op_code": (flags >> 11) & 0xF}
    header_flags = [name for bit, name in ((0x0400, "AA"), (0x0200, "TC"), (0x0100, "RD"), (0x0080, "RA"))
                    if flags & bit]
    if header_flags:
        dns["header_flags"] = header_flags
    if qdcount == 0:
        raise ParseError("DNS message without a question")
    for index in range(min(qdcount, MAX_QUESTIONS)):
        name, offset = _name(payload, offset)
        if offset + 4 > len(payload):
            raise ParseError("DNS question cut short")
        qtype = (payload[offset] << 8) | payload[offset + 1]
        offset += 4
        if index == 0:
            dns["question"] = {"name": name, "type": DNS_TYPES.get(qtype, str(qtype)), "class": "IN"}
    if response:
        dns["response_code"] = DNS_RCODES.get(flags & 0xF, str(flags & 0xF))
        answers: list[dict[str, Any]] = []
        resolved: list[str] = []
        for _ in range(min(ancount, MAX_ANSWERS)):
            name, offset = _name(payload, offset)
            if offset + 10 > len(payload):
                raise ParseError("DNS answer cut short")
            rtype, _, ttl, size = _RR.unpack_from(payload, offset)
            offset += 10
            if offset + size > len(payload):
                raise ParseError("DNS answer data runs past the message")
            data = _rdata(payload, offset, rtype, size)
            offset += size
            answers.append({"name": name, "type": DNS_TYPES.get(rtype, str(rtype)), "ttl": ttl, "data": data})
            if rtype in (1, 28):
                resolved.append(data)
        dns["answers"] = answers
        if resolved:
            dns["resolved_ip"] = resolved
    return dns


# -- HTTP ------------------------------------------------------------------------------------------

HTTP_METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE ",
                b"PROPFIND ")


def is_http_request(payload: bytes) -> bool:
    return payload[:8].startswith(HTTP_METHODS)


def parse_http_request(payload: bytes) -> dict[str, Any]:
    """Method, target, version and the headers analysts need, from a request's first segment."""
    head = payload.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        raise ParseError("not an HTTP request line")
    method, target, version = (part.decode("latin-1") for part in parts)
    request: dict[str, Any] = {"method": method, "target": target, "version": version[5:]}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        key = name.strip().lower()
        if key == b"host":
            request["host"] = value.strip().decode("latin-1")
        elif key == b"user-agent":
            request["user_agent"] = value.strip().decode("latin-1")
        elif key == b"referer":
            request["referrer"] = value.strip().decode("latin-1")
        elif key == b"content-length":
            text = value.strip()
            if text.isdigit():
                request["body_bytes"] = int(text)
    return request


def parse_http_status(payload: bytes) -> int | None:
    if not payload.startswith(b"HTTP/"):
        return None
    parts = payload[:32].split(b" ", 2)
    if len(parts) >= 2 and parts[1][:3].isdigit() and len(parts[1]) >= 3:
        return int(parts[1][:3])
    return None


# -- TLS client hello ------------------------------------------------------------------------------

def _grease(value: int) -> bool:
    # RFC 8701 GREASE values: 0x?A?A with both bytes equal; JA3 leaves them out.
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


TLS_VERSIONS = {0x0300: "3.0", 0x0301: "1.0", 0x0302: "1.1", 0x0303: "1.2", 0x0304: "1.3"}


def client_hello_length(payload: bytes) -> int | None:
    """Bytes the TLS record holding a ClientHello needs, or None if this is not one."""
    if len(payload) < 6 or payload[0] != 0x16 or payload[1] != 0x03 or payload[5] != 0x01:
        return None
    return 5 + ((payload[3] << 8) | payload[4])


def parse_client_hello(payload: bytes) -> dict[str, Any]:  # noqa: PLR0912, PLR0915 - one wire format
    """SNI, offered versions and the JA3 string and hash of a complete ClientHello record."""
    needed = client_hello_length(payload)
    if needed is None:
        raise ParseError("not a TLS ClientHello")
    if len(payload) < needed:
        raise ParseError("TLS ClientHello incomplete")
    data = payload[5:needed]
    if len(data) < 38:
        raise ParseError("TLS ClientHello too short")
    offset = 4  # handshake type and length
    client_version = (data[offset] << 8) | data[offset + 1]
    offset += 2 + 32
    session = data[offset]
    offset += 1 + session
    if offset + 2 > len(data):
        raise ParseError("TLS ClientHello cut in cipher suites")
    cipher_length = (data[offset] << 8) | data[offset + 1]
    offset += 2
    ciphers = [(data[i] << 8) | data[i + 1] for i in range(offset, min(offset + cipher_length, len(data) - 1), 2)]
    offset += cipher_length
    if offset >= len(data):
        raise ParseError("TLS ClientHello cut in compression methods")
    offset += 1 + data[offset]
    extensions: list[int] = []
    groups: list[int] = []
    formats: list[int] = []
    versions: list[int] = []
    server_name: str | None = None
    alpn: list[str] = []
    if offset + 2 <= len(data):
        end = min(len(data), offset + 2 + ((data[offset] << 8) | data[offset + 1]))
        offset += 2
        while offset + 4 <= end:
            ext_type = (data[offset] << 8) | data[offset + 1]
            ext_length = (data[offset + 2] << 8) | data[offset + 3]
            body = data[offset + 4: offset + 4 + ext_length]
            offset += 4 + ext_length
            extensions.append(ext_type)
            if ext_type == 0 and len(body) >= 5 and body[2] == 0:
                name_length = (body[3] << 8) | body[4]
                server_name = body[5:5 + name_length].decode("ascii", "replace")
            elif ext_type == 10 and len(body) >= 2:
                groups = [(body[i] << 8) | body[i + 1] for i in range(2, min(len(body) - 1, 2 + ((body[0] << 8)
                                                                                               | body[1])), 2)]
            elif ext_type == 11 and body:
                formats = list(body[1:1 + body[0]])
            elif ext_type == 43 and body:
                versions = [(body[i] << 8) | body[i + 1] for i in range(1, min(len(body) - 1, 1 + body[0]), 2)]
            elif ext_type == 16 and len(body) >= 2:
                index = 2
                while index < len(body):
                    size = body[index]
                    alpn.append(body[index + 1:index + 1 + size].decode("ascii", "replace"))
                    index += 1 + size
    ja3 = ",".join((
        str(client_version),
        "-".join(str(c) for c in ciphers if not _grease(c)),
        "-".join(str(e) for e in extensions if not _grease(e)),
        "-".join(str(g) for g in groups if not _grease(g)),
        "-".join(str(f) for f in formats),
    ))
    offered = [v for v in versions if not _grease(v)] or [client_version]
    result: dict[str, Any] = {
        "ja3_string": ja3,
        "ja3": hashlib.md5(ja3.encode(), usedforsecurity=False).hexdigest(),
        "version": TLS_VERSIONS.get(max(offered), hex(max(offered))),
        "supported_ciphers": [hex(c) for c in ciphers if not _grease(c)][:64],
    }
    if server_name is not None:
        result["server_name"] = server_name
    if alpn:
        result["alpn"] = alpn
    return result


# -- Community ID ----------------------------------------------------------------------------------

_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17, 10: 9, 9: 10}
_ICMP6_PAIRS = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130}


def community_id(src: bytes, dst: bytes, proto: int, sport: int, dport: int, *, seed: int = 0) -> str:
    """Community ID v1 (corelight/community-id-spec) of a flow, from raw address bytes."""
    one_way = False
    if proto in (1, 58):
        pairs = _ICMP4_PAIRS if proto == 1 else _ICMP6_PAIRS
        icmp_type, code = sport, dport
        if icmp_type in pairs:
            sport, dport = icmp_type, pairs[icmp_type]
        else:
            sport, dport, one_way = icmp_type, code, True
    if not one_way and (src, sport) > (dst, dport):
        src, dst, sport, dport = dst, src, dport, sport
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(struct.pack("!H", seed) + src + dst + struct.pack("!BB", proto, 0))
    if proto in (1, 6, 17, 58, 132):
        digest.update(struct.pack("!HH", sport, dport))
    return "1:" + base64.b64encode(digest.digest()).decode()
