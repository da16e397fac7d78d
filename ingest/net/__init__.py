"""The network sensor: capture (scapy), fast header decoding, flows, DNS, HTTP and TLS records."""
