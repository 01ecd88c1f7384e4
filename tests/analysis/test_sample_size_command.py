"""``manage.py sample_size``: the reference trial's 270, and the power curve's key points."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from statsmodels.stats.power import TTestPower


def run(*args: str) -> str:
    out = StringIO()
    call_command("sample_size", *args, stdout=out)
    return out.getvalue()


def power_table(output: str) -> dict[int, float]:
    return {int(n): float(p) for n, p in re.findall(r"^\s+(\d+)\s+([01]\.\d{4})", output, re.M)}


REFERENCE = ["--delta", "0.207", "--sd", "0.872", "--alpha", "0.05", "--power", "0.9",
             "--dropout", "0.3"]


def test_reference_trial_needs_270_cases():
    output = run(*REFERENCE)
    assert "Required number of cases: 270" in output
    assert "n = 188.39 -> 189 evaluable pairs" in output
    assert "189 / (1 - 0.3) -> 270 to recruit" in output
    table = power_table(output)
    assert sorted(table) == [50, 100, 150, 189, 200, 250, 300]
    d = 0.207 / 0.872
    for n, power in table.items():  # printed to 4 decimals
        assert abs(power - TTestPower().power(d, n, 0.05)) < 5e-5
    assert table[189] >= 0.9 > table[150]
    assert re.search(r"189\s+0\.9009\s+<- required", output)


def test_explicit_design_and_points():
    output = run(*REFERENCE, "--design", "paired", "--points", "100", "300")
    assert sorted(power_table(output)) == [100, 189, 300]


def test_independent_design_reports_per_group_and_total():
    output = run(*REFERENCE, "--design", "independent")
    assert "Required number of cases: 535 per group (1070 in total)" in output
    assert "374 evaluable cases per group" in output


def test_no_dropout_prints_the_evaluable_n():
    output = run("--delta", "0.207", "--sd", "0.872")
    assert "Required number of cases: 189" in output and "to recruit" not in output


@pytest.mark.parametrize("args, message", [
    (["--delta", "0", "--sd", "0.872"], "zero difference"),
    (["--delta", "0.2", "--sd", "-1"], "positive"),
    (["--delta", "0.2", "--sd", "1", "--dropout", "1"], "dropout"),
])
def test_bad_inputs_are_command_errors(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
