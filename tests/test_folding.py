"""Folding of iCalendar content lines: at most 75 octets a physical line, never inside a
character, and unfolding gives the line back."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.folding import fold

LINES = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")), max_size=400)


@settings(max_examples=300, deadline=None)
@given(line=LINES, eol=st.sampled_from(["\r\n", "\n"]))
def test_folded_lines_are_short_and_unfold_to_the_original(line: str, eol: str) -> None:
    folded = fold(line, eol)
    physical = folded.split(eol)
    assert physical[-1] == ""  # every physical line ends with the line ending
    assert all(len(p.encode("utf-8")) <= 75 for p in physical)
    assert all(p.startswith(" ") for p in physical[1:-1])
    assert folded.replace(eol + " ", "")[: -len(eol)] == line


def test_an_ascii_line_is_cut_at_75_then_74_characters() -> None:
    """The first physical line holds 75 characters, each continuation a space and 74."""
    assert fold("a" * 200) == "a" * 75 + "\r\n " + "a" * 74 + "\r\n " + "a" * 51 + "\r\n"


def test_a_character_is_never_split() -> None:
    """A four-octet character that would cross octet 75 starts the next line."""
    folded = fold("a" * 73 + "😀" + "b")
    assert folded == "a" * 73 + "\r\n 😀b\r\n"
