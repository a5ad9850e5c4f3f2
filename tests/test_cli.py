"""The command line: `physml info` and `physml demo` run and print what they promise."""

import pytest

from physml.cli import main


def test_info_lists_versions_and_methods(capsys):
    assert main(["info"]) == 0
    printed = capsys.readouterr().out
    assert "torch" in printed and "dopri5 (5)" in printed and "kvaerno3 (3)" in printed
    assert "SDE methods: euler" in printed


def test_demo_prints_a_table_with_small_errors(capsys):
    assert main(["demo", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.startswith(("Lotka", "Van der Pol", "Robertson"))]
    assert len(rows) == 10
    for row in rows:
        assert row[-6] == "success"
        # Relative error against SciPy at rtol 1e-12 for a solve at rtol 1e-6.
        assert float(row[-2]) < 1e-3, row


def test_demo_rejects_bad_thread_count():
    with pytest.raises(SystemExit):
        main(["demo", "--threads", "0"])
