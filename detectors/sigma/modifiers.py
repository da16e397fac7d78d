"""Corrections to pySigma 1.5's encoding modifiers, registered in its modifier table.

pySigma turns ``wide``/``utf16be``/``utf16`` output back into text by decoding UTF-16 bytes as
UTF-8, which only works for ASCII, and ``utf16`` prepends the BOM as the text U+FEFF (so
``utf16|base64`` encodes EF BB BF instead of FF FE). Here the encoders keep their bytes, one
character per byte (:class:`ByteString`), and ``base64``/``base64offset`` encode those bytes as
they are; plain strings are still encoded as UTF-8, with offsets counted in bytes. The Sigma
specification's ``utf16le`` alias of ``wide`` is registered too.
"""

from __future__ import annotations

from base64 import b64encode
from typing import ClassVar

from sigma.exceptions import SigmaValueError
from sigma.modifiers import (
    SigmaBase64Modifier,
    SigmaBase64OffsetModifier,
    SigmaUTF16BEModifier,
    SigmaUTF16Modifier,
    SigmaWideModifier,
    modifier_mapping,
    reverse_modifier_mapping,
)
from sigma.types import SigmaExpansion, SigmaString, SigmaStringPartType


class ByteString(SigmaString):
    """A SigmaString whose characters U+0000..U+00FF stand for bytes (output of an encoder)."""


def _data(val: SigmaString) -> bytes:
    if isinstance(val, ByteString):
        return "".join(part for part in val.s if isinstance(part, str)).encode("latin-1")
    return bytes(val)


def _encode(val: SigmaString, codec: str, bom: bytes) -> ByteString:
    parts: list[SigmaStringPartType] = [bom.decode("latin-1")] if bom else []
    for item in val.s:
        parts.append(item.encode(codec).decode("latin-1") if isinstance(item, str) else item)
    result = ByteString()
    result.s = parts
    return result


class WideModifier(SigmaWideModifier):
    """UTF-16LE (``wide``, ``utf16le``)."""

    codec: ClassVar[str] = "utf-16-le"
    bom: ClassVar[bytes] = b""

    def modify(self, val: SigmaString) -> SigmaString:
        return _encode(val, self.codec, self.bom)


class UTF16BEModifier(SigmaUTF16BEModifier):
    def modify(self, val: SigmaString) -> SigmaString:
        return _encode(val, "utf-16-be", b"")


class UTF16Modifier(SigmaUTF16Modifier):
    """UTF-16LE with its byte order mark FF FE."""

    def modify(self, val: SigmaString) -> SigmaString:
        return _encode(val, "utf-16-le", b"\xff\xfe")


class Base64Modifier(SigmaBase64Modifier):
    def modify(self, val: SigmaString) -> SigmaString:
        if val.contains_special():
            raise SigmaValueError("Base64 encoding of strings with wildcards is not allowed", source=self.source)
        return SigmaString(b64encode(_data(val)).decode())


class Base64OffsetModifier(SigmaBase64OffsetModifier):
    def modify(self, val: SigmaString) -> SigmaExpansion:
        if val.contains_special():
            raise SigmaValueError("Base64 encoding of strings with wildcards is not allowed", source=self.source)
        data = _data(val)
        return SigmaExpansion([
            SigmaString(
                b64encode(i * b" " + data)[self.start_offsets[i]: self.end_offsets[(len(data) + i) % 3]].decode()
            )
            for i in range(3)
        ])


def register() -> None:
    """Install the corrected modifiers in pySigma's table (idempotent)."""
    for name, modifier in (("wide", WideModifier), ("utf16le", WideModifier), ("utf16be", UTF16BEModifier),
                           ("utf16", UTF16Modifier), ("base64", Base64Modifier),
                           ("base64offset", Base64OffsetModifier)):
        modifier_mapping[name] = modifier
        reverse_modifier_mapping[modifier.__name__] = name
