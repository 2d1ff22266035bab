"""The scenario grammar: parsing, validation, and how header, markers and default combine."""

from __future__ import annotations

import pytest

from nanobanana.emulator.scenarios import ScenarioError, Spec, build_plan, parse_specs


def test_parses_names_and_arguments() -> None:
    specs = parse_specs("latency:0.5, quota:0.2,flaky:2:429:tagA,size:100x50,jpeg")
    assert [s.text for s in specs] == [
        "latency:0.5",
        "quota:0.2",
        "flaky:2:429:tagA",
        "size:100x50",
        "jpeg",
    ]
    assert specs[1].number(0, 1.0) == 0.2
    assert Spec("quota").number(0, 1.0) == 1.0


@pytest.mark.parametrize(
    "bad",
    [
        "nosuch",
        "latency",
        "latency:abc",
        "server-error:418",
        "flaky:x:429",
        "size:12",
        "oversize",
        "quota:1:2",
        "slow-drip:0",
        "jpeg:1",
        "flaky:1:200",
    ],
)
def test_bad_specs_are_refused(bad: str) -> None:
    with pytest.raises(ScenarioError):
        parse_specs(bad)


def test_header_and_markers_combine_and_default_applies_only_when_both_are_empty() -> None:
    plan = build_plan(
        "latency:0.1", ["draw [emulator:quota:0.2] a fox", "[emulator:jpeg]"], "safety"
    )
    assert plan.latency == pytest.approx(0.1)
    assert plan.outcome == Spec("quota", ("0.2",))
    assert [s.name for s in plan.payload] == ["jpeg"]
    assert plan.texts == ["latency:0.1", "quota:0.2", "jpeg"]

    fallback = build_plan(None, ["no marker here"], "safety,latency:0.3")
    assert fallback.outcome == Spec("safety") and fallback.latency == pytest.approx(0.3)

    assert build_plan(None, [], None, default_latency=0.25).latency == pytest.approx(0.25)
    assert build_plan("ok", [], "safety").outcome is None


def test_conflicts_are_refused() -> None:
    with pytest.raises(ScenarioError, match="outcome"):
        build_plan("quota,payment", [], None)
    with pytest.raises(ScenarioError, match="transport"):
        build_plan("reset,truncated", [], None)


def test_scoped_markers_apply_to_one_service_only() -> None:
    prompt = ["a fox [emulator@gemini:quota-day] [emulator@openrouter:latency:0.1]"]
    gemini = build_plan(None, prompt, None, service="gemini")
    openrouter = build_plan(None, prompt, None, service="openrouter")
    assert gemini.outcome is not None and gemini.outcome.name == "quota-day"
    assert gemini.latency == 0.0
    assert openrouter.outcome is None and openrouter.latency == 0.1
    both = build_plan(None, ["[emulator:safety]"], None, service="openrouter")
    assert both.outcome is not None and both.outcome.name == "safety"


def test_a_marker_ends_at_its_bracket_and_never_spans_another() -> None:
    """An unclosed marker does not swallow the next one (and a prompt of thousands of unclosed
    markers is scanned once, not once per marker)."""
    plan = build_plan(None, ["[emulator:[emulator:quota]"], None)
    assert plan.outcome is not None and plan.outcome.name == "quota"
    assert build_plan(None, ["[emulator:" * 3_000], None).specs == ()
