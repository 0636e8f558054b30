"""`csv_safe`: the one place CSV exports neutralise spreadsheet formulas."""

from __future__ import annotations

import pytest

from tenantry.api.routes.audit import csv_safe


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "=", '=HYPERLINK("x")', "-", "+cmd|' /C calc'!A0"],
)
def test_csv_safe_prefixes_formula_starts_with_a_quote(value):
    assert csv_safe(value) == "'" + value


@pytest.mark.parametrize(
    "value",
    ["", "plain", "1+1", " =1", "a=b", "'=already quoted", '{"a": 1}', "null", "192.0.2.1", "::1", "\n=1"],
)
def test_csv_safe_leaves_other_text_alone(value):
    assert csv_safe(value) == value


@pytest.mark.parametrize("value", [None, 0, -1, 2.5])
def test_csv_safe_leaves_non_text_alone(value):
    assert csv_safe(value) == value
