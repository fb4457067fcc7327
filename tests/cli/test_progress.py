from __future__ import annotations

import io

from gcs_model_sync.cli.progress import Progress, wanted
from gcs_model_sync.units import human


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


def test_progress_line_names_the_versions_in_flight_and_an_eta() -> None:
    done = [0]
    clock = [100.0]
    names = [["m/3", "m/4"]]
    p = Progress(
        4 * 1024**2, lambda: done[0], lambda: names[0], stream=Tty(), clock=lambda: clock[0]
    )
    clock[0], done[0] = 102.0, 1024**2  # 1 MiB in 2 s: 3 MiB to go, 6 s left
    assert p.line().startswith("  m/3, m/4  1.0 MiB / 4.0 MiB")
    assert "ETA 6s" in p.line()
    names[0] = [f"m/{n}" for n in range(10)]
    clock[0], done[0] = 202.0, 2 * 1024**2  # 2 MiB in 102 s: 2 MiB to go at 1 MiB/51 s
    line = p.line()
    assert "m/0, m/1, m/2 +7" in line
    assert "ETA 1m42s" in line
    names[0] = []
    clock[0], done[0] = 202.0, 0
    assert "ETA" not in p.line()  # nothing read yet: no guess
