from __future__ import annotations

import io

from gcs_model_sync.progress import Progress, human, wanted


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_for_people() -> None:
    assert wanted("text", 0, Tty())
    assert not wanted("json", 0, Tty())
    assert not wanted("text", -1, Tty())
    assert not wanted("text", 0, io.StringIO())


def test_progress_line_shows_bytes_and_rate() -> None:
    out = Tty()
    done = [0]
    with Progress(2 * 1024**2, lambda: done[0], stream=out, every=0.01) as p:
        done[0] = 1024**2
        line = p.line()
    assert "1.0 MiB / 2.0 MiB" in line
    assert "50.0%" in line
    assert "/s" in line
    assert out.getvalue().endswith("\r\x1b[K")


def test_human_sizes() -> None:
    assert human(12) == "12 B"
    assert human(1536) == "1.5 KiB"
    assert human(3 * 1024**3) == "3.0 GiB"
