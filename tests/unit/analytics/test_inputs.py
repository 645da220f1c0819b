"""Parameters, windows and template rendering: bad input gets an error naming the field and what was expected."""

from __future__ import annotations

import pytest
from trace_core.analytics import catalog, errors, render, windows

TOKEN = "0x" + "11" * 20


def test_unknown_analytic_lists_the_names_that_exist():
    with pytest.raises(errors.UnknownAnalyticError) as info:
        catalog.get("total_suply")
    assert "total_suply" in info.value.message
    for name in ("total_supply", "top_holders", "staking_concentration"):
        assert name in info.value.message
    assert info.value.details["expected"] == ["total_supply", "top_holders", "staking_concentration"]


@pytest.mark.parametrize(
    ("name", "raw", "field", "says"),
    [
        ("total_supply", {}, "token", "parameter token is required"),
        ("total_supply", {"token": "0x1234"}, "token", "an address (0x and 40 hex digits)"),
        ("total_supply", {"token": TOKEN, "from_block": "ten"}, "from_block", "an integer"),
        ("total_supply", {"token": TOKEN, "from_block": "-1"}, "from_block", ">= 0"),
        ("total_supply", {"token": TOKEN, "every_block": "perhaps"}, "every_block", "true or false"),
        ("total_supply", {"token": TOKEN, "blocks": "5"}, "blocks", "unknown parameter"),
        ("top_holders", {"token": TOKEN, "n": "0"}, "n", ">= 1"),
        ("top_holders", {"token": TOKEN, "n": "1000"}, "n", "<= 100"),
        ("staking_concentration", {"top_k": "1.5"}, "top_k", "an integer"),
    ],
)
def test_bad_parameters_name_the_field_and_list_every_parameter(name, raw, field, says):
    analytic = catalog.get(name)
    with pytest.raises(errors.ParameterError) as info:
        analytic.parse(raw)
    message = info.value.message
    assert info.value.details["field"] == field
    assert says in message
    # THEN the message lists every parameter the analytic takes, with its type
    for spec in analytic.parameters():
        assert f"{spec.name} ({spec.type}" in message


def test_cli_strings_are_coerced_and_addresses_normalised():
    parsed = catalog.get("top_holders").parse({"token": TOKEN.upper().replace("0X", "0x"), "n": "3", "from_block": "7"})
    assert (parsed.token, parsed.n, parsed.from_block, parsed.samples) == (TOKEN, 3, 7, 50)


def test_parameter_descriptions_show_types_and_requiredness():
    specs = {s.name: s for s in catalog.get("top_holders").parameters()}
    assert specs["token"].type == "address" and specs["token"].required
    assert specs["n"].type == "integer 1..100" and specs["n"].default == 10
    assert specs["to_block"].type == "block number" and not specs["to_block"].required
    assert next(iter(specs)) == "token"  # required first


@pytest.mark.parametrize(
    ("synced", "lo", "hi", "expect"),
    [
        ([(0, 100), (100, 250)], None, None, (0, 250, 0)),
        ([(100, 200)], 150, None, (150, 200, 100)),
        ([(0, 1000)], 10, 20, (10, 20, 0)),
    ],
)
def test_windows_default_to_the_first_contiguous_synced_run(synced, lo, hi, expect):
    window = windows.resolve("erc20_transfers", synced, lo, hi)
    assert (window.from_block, window.to_block, window.history_from) == expect


@pytest.mark.parametrize(
    ("synced", "lo", "hi", "field"),
    [
        ([(0, 500)], 0, 600, "to_block"),
        ([(100, 500)], 50, 200, "from_block"),
        ([(0, 100), (200, 300)], 0, 250, "to_block"),
    ],
)
def test_a_window_outside_synced_data_names_the_synced_blocks(synced, lo, hi, field):
    with pytest.raises(errors.WindowError) as info:
        windows.resolve("erc20_transfers", synced, lo, hi)
    message = info.value.message
    assert f"[{lo}, {hi})" in message and "erc20_transfers" in message
    for start, end in windows.merge(synced):
        assert f"[{start}, {end})" in message
    assert info.value.details["field"] == field


def test_nothing_synced_and_empty_windows_are_clear_errors():
    with pytest.raises(errors.WindowError, match="no synced blocks of staking_events"):
        windows.resolve("staking_events", [], None, None)
    with pytest.raises(errors.WindowError, match="end-exclusive"):
        windows.resolve("staking_events", [(0, 10)], 5, 5)


def test_sampling_covers_the_window_and_ends_at_its_last_block():
    window = windows.Window(from_block=10, to_block=110, history_from=0)
    sampling = windows.sampling(window, 7)
    assert sampling.step == 15 and sampling.count == 7
    assert sampling.blocks == [24, 39, 54, 69, 84, 99, 109]
    # more samples than blocks: every block once
    assert windows.sampling(windows.Window(5, 8, 0), 50).blocks == [5, 6, 7]


def test_render_puts_values_in_as_literals_never_as_sql():
    # GIVEN a value that would be an injection if pasted as text
    sql = render.render("SELECT a FROM t WHERE b = $who AND c < $n", {"who": "x' OR 1=1 --", "n": 5})
    # THEN it stays one string literal
    assert "'x'' OR 1=1 --'" in sql and "c < 5" in sql
    assert sql.count("WHERE") == 1


def test_render_refuses_missing_and_unused_values():
    with pytest.raises(errors.AnalyticsError, match=r"\$n"):
        render.render("SELECT $n", {})
    with pytest.raises(errors.AnalyticsError, match=r"\$extra"):
        render.render("SELECT $n", {"n": 1, "extra": 2})


def test_every_template_renders_with_its_analytic_values():
    window = windows.Window(from_block=0, to_block=100, history_from=0)
    for analytic in catalog.ANALYTICS:
        raw = {"token": TOKEN} if "token" in analytic.params.model_fields else {}
        values = analytic.sql_values(analytic.parse(raw), window)
        assert render.placeholders(render.template(analytic.template)) == set(values)
        assert analytic.relation in render.render_template(analytic.template, values)
