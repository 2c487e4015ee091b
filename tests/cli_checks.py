"""What the command lines' error tests share: a refused input is one ``error:`` line."""

from __future__ import annotations


def one_error_line(capsys, status: int, *needles: str, code: int = 2) -> str:
    """The one ``error:`` line, after checking the status, that it is alone on stderr, and
    that it holds every needle."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == code, captured.out + captured.err
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
