"""lkca.runtime.console: lines on rank 0 only, progress bars on rank 0 and on a terminal only."""

from __future__ import annotations

import io

from lkca.runtime.console import Console, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _draw(bar) -> None:
    for _ in range(3):
        bar.update()
        bar.set_postfix(loss=1.0)
    bar.close()


def test_bar_draws_on_a_terminal_only(monkeypatch, capsys):
    _draw(progress_bar(True, 3, desc="epoch 1/1"))  # stderr captured: not a terminal
    assert capsys.readouterr().err == ""
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    _draw(progress_bar(True, 3, desc="epoch 1/1"))
    assert "epoch 1/1" in terminal.getvalue()
    drawn = len(terminal.getvalue())
    _draw(progress_bar(False, 3, desc="epoch 1/1"))  # --no-progress, or a rank other than 0
    assert len(terminal.getvalue()) == drawn


def test_lines_and_bars_on_the_main_process_only(monkeypatch, capsys):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    other = Console(main=False, progress=True)
    other.print("training ...")
    _draw(other.progress(3, desc="epoch 1/1"))
    assert capsys.readouterr().out == "" and terminal.getvalue() == ""
    Console(main=True, progress=True).print("training ...")
    assert capsys.readouterr().out == "training ...\n"
