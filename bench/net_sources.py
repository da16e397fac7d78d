"""Generated input files of the network sources for ``bench/collectors.py`` (one maker per format).

Each maker writes ``count`` lines in its vendor's format, with addresses, ports and times varying
from line to line as a busy connection point's logs do (one second of stamps per 1,000 lines).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def _write(path: Path, count: int, line: Callable[[int], str]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(line(number) + "\n" for number in range(count))
    return path


def _clock(number: int) -> str:
    return f"09:{number // 60000 % 60:02d}:{number // 1000 % 60:02d}"


def make_fortigate(path: Path, count: int) -> Path:
    return _write(path, count, lambda n: (
        f'<189>date=2026-12-07 time={_clock(n)} devname="fw-cp{n % 184:03d}" devid="FG100FTK19{n % 184:06d}" '
        f'tz="+0700" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" '
        f'srcip=10.20.{n % 180}.{n % 250} srcport={40000 + n % 20000} srcintf="port2" srcintfrole="lan" '
        f'dstip=203.0.113.{n % 250} dstport={(443, 80, 53, 22)[n % 4]} dstintf="wan1" dstintfrole="wan" '
        f'sessionid={n} proto=6 action="{"deny" if n % 5 == 0 else "close"}" policyid={n % 40} policytype="policy" '
        f'service="HTTPS" trandisp="snat" transip=198.51.100.2 transport={40000 + n % 20000} duration={n % 60} '
        f'sentbyte={n % 9000} rcvdbyte={n % 90000} sentpkt={n % 90} rcvdpkt={n % 900} appcat="unscanned"'))


def make_asa(path: Path, count: int) -> Path:
    return _write(path, count, lambda n: (
        f"<166>Dec 07 2026 {_clock(n)} asa-cp{n % 184:03d} : %ASA-6-302013: Built outbound TCP connection {n} for "
        f"outside:203.0.113.{n % 250}/443 (203.0.113.{n % 250}/443) to inside:10.20.{n % 180}.{n % 250}/"
        f"{40000 + n % 20000} (198.51.100.2/{40000 + n % 20000})" if n % 3 else
        f'<164>Dec 07 2026 {_clock(n)} asa-cp{n % 184:03d} : %ASA-4-106023: Deny tcp src outside:203.0.113.'
        f'{n % 250}/{40000 + n % 20000} dst inside:10.30.0.{n % 250}/22 by access-group "outside_access_in" '
        f"[0x0, 0x0]"))


def make_cef(path: Path, count: int) -> Path:
    return _write(path, count, lambda n: (
        f"<134>Dec  7 {_clock(n)} waf{n % 4:02d} CEF:0|Imperva Inc.|SecureSphere|15.1|sqli-{n % 50}|SQL Injection|"
        f"{n % 10}|src=203.0.113.{n % 250} spt={40000 + n % 20000} dst=10.30.0.10 dpt=443 act=blocked "
        f"request=https://dichvucong.hoagiang.gov.vn/tra-cuu?id\\={n} requestMethod=GET "
        f"requestClientApplication=Mozilla/5.0 (X11; Linux x86_64) rt={1796610011000 + n}"))


def make_leef(path: Path, count: int) -> Path:
    return _write(path, count, lambda n: (
        f"<13>Dec  7 {_clock(n)} sw-core01 LEEF:2.0|Lancope|StealthWatch|1.0|{n % 60}|^|src=10.20.{n % 180}."
        f"{n % 250}^dst=198.51.100.{n % 250}^dstPort=53^proto=17^cat=Suspect Data Hoarding^sev={n % 10}"))


def make_filterlog(path: Path, count: int) -> Path:
    return _write(path, count, lambda n: (
        f"<134>Dec  7 {_clock(n)} pfs-cp{n % 184:03d} filterlog[4721]: 5,,,1000000103,igb0,match,"
        f"{'block' if n % 2 else 'pass'},in,4,0x0,,64,{n % 65535},0,DF,6,tcp,60,203.0.113.{n % 250},10.40.0.5,"
        f"{40000 + n % 20000},{n % 1024},0,S,{n},,64240,,mss;sackOK;TS;nop;wscale"))


def make_netfilter(path: Path, count: int) -> Path:
    return _write(path, count, lambda n: (
        f"<4>Dec  7 {_clock(n)} gw-cp{n % 184:03d} kernel: [{1234567 + n}.890123] [UFW BLOCK] IN=eth0 OUT= "
        f"MAC=00:16:3e:5e:6c:00:00:16:3e:11:22:33:08:00 SRC=203.0.113.{n % 250} DST=10.50.0.5 LEN=60 TOS=0x00 "
        f"PREC=0x00 TTL=52 ID={n % 65535} DF PROTO=TCP SPT={40000 + n % 20000} DPT={n % 1024} WINDOW=64240 "
        f"RES=0x00 SYN URGP=0"))


def make_squid(path: Path, count: int) -> Path:
    return _write(path, count, lambda n: (
        f"{1796610131 + n // 1000}.{n % 1000:03d} {n % 3000:6d} 10.20.{n % 180}.{n % 250} TCP_MISS/200 "
        f"{n % 90000} GET http://cdn{n % 50}.example.com/assets/app{n % 300}.js?v={n} - "
        f"HIER_DIRECT/198.51.100.{n % 250} application/javascript"))


def make_iis(path: Path, count: int) -> Path:
    header = ("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: 2026-12-07 02:00:00\n"
              "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
              "cs(Referer) sc-status sc-substatus sc-win32-status time-taken\n")
    path.write_text(header, encoding="utf-8")
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(
            f"2026-12-07 {_clock(n)} 10.30.0.10 GET /dichvucong/tra-cuu ma_ho_so=HG{n} 443 - 10.20.{n % 180}."
            f"{n % 250} Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+Chrome/131.0 https://dichvucong.hoagiang.gov.vn/ "
            f"{200 if n % 7 else 404} 0 0 {n % 500}\n" for n in range(count))
    return path


MAKERS: tuple[tuple[str, Callable[[Path, int], Path]], ...] = (
    ("files: FortiGate traffic (key=value syslog)", make_fortigate),
    ("files: Cisco ASA 302013/106023", make_asa),
    ("files: CEF (WAF)", make_cef),
    ("files: LEEF 2.0", make_leef),
    ("files: pfSense filterlog", make_filterlog),
    ("files: iptables kernel log", make_netfilter),
    ("files: Squid native access log", make_squid),
    ("files: IIS W3C", make_iis),
)
