"""Hypothesis strategies shared by the parser fuzz tests: sample lines cut, spliced and salted with
odd characters, and whole files mixing samples, mutants, random bytes and invalid UTF-8."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

ODD = ['"', "{", "}", "[", "(", "<", "\\", "=", ";", ":", ","]
BAD_UTF8 = [b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80"]


def mutated(samples: Sequence[str]) -> st.SearchStrategy[str]:
    """A line of ``samples`` cut, spliced with odd characters or another sample, or random text."""

    @st.composite
    def strategy(draw: st.DrawFn) -> str:
        if draw(st.integers(0, 4)) == 0:
            return draw(st.text(max_size=300))
        line = draw(st.sampled_from(samples))
        for _ in range(draw(st.integers(0, 4))):
            position = draw(st.integers(0, len(line)))
            action = draw(st.sampled_from(["cut", "insert", "delete", "splice", "odd"]))
            if action == "cut":
                line = line[:position]
            elif action == "insert":
                line = line[:position] + draw(st.text(max_size=8)) + line[position:]
            elif action == "delete":
                line = line[:position] + line[position + draw(st.integers(1, 10)):]
            elif action == "splice":
                line = line[:position] + draw(st.sampled_from(samples))[position:]
            else:
                line = line[:position] + draw(st.sampled_from(ODD)) + line[position:]
        return line

    return strategy()


def file_lines(draw: st.DrawFn, own: Sequence[str], others: Sequence[str]) -> list[bytes]:
    """1-12 lines for one file: its format's samples, mutants of any sample, random bytes, bad UTF-8."""
    lines: list[bytes] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["sample", "sample", "mutated", "bytes", "bad utf-8"]))
        if kind == "sample":
            lines.append(draw(st.sampled_from(own)).encode())
        elif kind == "mutated":
            lines.append(draw(mutated(others)).encode("utf-8", "surrogatepass"))
        elif kind == "bytes":
            lines.append(draw(st.binary(max_size=200)))
        else:
            line = draw(st.sampled_from(own)).encode()
            position = draw(st.integers(0, len(line)))
            lines.append(line[:position] + draw(st.sampled_from(BAD_UTF8)) + line[position:])
    return [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]
