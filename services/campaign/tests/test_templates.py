"""Template engine: variables and defaults, spintax, escapes, errors, previews."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from tgm_campaign.messaging.templates import (
    MissingVariables,
    TemplateError,
    merge_values,
    parse,
    preview,
    recipient_values,
    render,
    seeded,
    variables,
    variants,
)
from tgm_contracts.models.campaign import PeerView, PreviewInput, TemplateVariable

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


def r(text: str, values: dict[str, str] | None = None, seed: int = 1) -> str:
    return render(parse(text), values or {}, random.Random(seed))


def test_variables_single_and_double_braces() -> None:
    assert r("Hi {first_name}, {{ last_name }}!", {"first_name": "Ann", "last_name": "Lee"}) == "Hi Ann, Lee!"
    assert variables(parse("{a} {b} {a} {x|{c}}")) == ["a", "b", "c"]


def test_missing_variable_raises_naming_all() -> None:
    with pytest.raises(MissingVariables) as exc:
        r("Hi {first_name} from {city}")
    assert exc.value.names == ["first_name", "city"]
    assert render(parse("Hi {first_name}"), {}, random.Random(0), missing="keep") == "Hi {first_name}"


def test_defaults_and_precedence() -> None:
    declared = [TemplateVariable(name="first_name", default="friend"), TemplateVariable(name="city")]
    job = {"city": "Taipei"}
    recipient = recipient_values("Ann", None, "ann_w")
    assert merge_values(declared, job, recipient) == {
        "city": "Taipei",
        "first_name": "Ann",
        "full_name": "Ann",
        "username": "@ann_w",
    }
    # no recipient name: the declared default fills in; empty strings do not count as values
    assert merge_values(declared, {"first_name": ""}, {})["first_name"] == "friend"
    # the job's value beats the recipient's
    assert merge_values(declared, {"first_name": "Boss"}, recipient)["first_name"] == "Boss"


def test_spintax_picks_every_option_and_nests() -> None:
    seq = parse("{Hi|Hello|Hey} {there|{dear|my} friend}")
    rng = random.Random(3)
    seen = Counter(render(seq, {}, rng) for _ in range(600))
    assert set(seen) == {
        f"{a} {b}" for a in ("Hi", "Hello", "Hey") for b in ("there", "dear friend", "my friend")
    }
    assert variants(seq) == 9
    assert variants(parse("plain")) == 1
    assert r("{{Hi|Hello}}", seed=0) in {"Hi", "Hello"}  # redundant braces are fine
    assert r("{|very }good", seed=5) in {"good", "very good"}  # an empty option is allowed


def test_spintax_with_variables_inside() -> None:
    out = {r("{Hi {first_name}|Hello {first_name}}", {"first_name": "Bo"}, s) for s in range(20)}
    assert out == {"Hi Bo", "Hello Bo"}


def test_escapes() -> None:
    assert r(r'JSON \{"a": 1\} and a pipe \| and \\ slash') == r'JSON {"a": 1} and a pipe | and \ slash'
    assert r(r"a\nb") == r"a\nb"  # only the template's own characters are escapes


@pytest.mark.parametrize(
    ("text", "pos"),
    [
        ("Hi {first name}", 3),
        ("Hi {first_name", 3),
        ("Hi } there", 3),
        ("a | b", 2),
        ("{x|y", 0),
        ("{}", 0),
    ],
)
def test_syntax_errors_say_where(text: str, pos: int) -> None:
    with pytest.raises(TemplateError) as exc:
        parse(text)
    assert exc.value.position == pos
    assert f"at character {pos + 1}" in str(exc.value)


def test_seeded_rendering_is_stable_per_job() -> None:
    seq = parse("{a|b|c|d|e|f|g|h} {1|2|3|4|5|6|7|8}")
    assert render(seq, {}, seeded("job-1")) == render(seq, {}, seeded("job-1"))
    outs = {render(seq, {}, seeded(f"job-{i}")) for i in range(40)}
    assert len(outs) > 10


def test_variant_count_is_capped() -> None:
    big = " ".join("{a|b|c|d|e|f|g|h|i|j}" for _ in range(8))
    assert variants(parse(big)) == 1_000_000


def test_preview_reports_samples_missing_and_warnings() -> None:
    declared = [TemplateVariable(name="product", default="TG-Matrix"), TemplateVariable(name="unused")]
    out = preview(
        "{Hi|Hello} {first_name}, try {product} in {city}",
        declared,
        PreviewInput(recipient=PeerView(first_name="Ann"), samples=5, seed=42),
    )
    assert len(out.samples) == 5
    assert all(s.endswith("Ann, try TG-Matrix in {city}") for s in out.samples)
    assert out.variables_used == ["first_name", "product", "city"]
    assert out.missing_variables == ["city"]
    assert out.variants == 2
    assert any("city" in w for w in out.warnings) and any("unused" in w for w in out.warnings)
    again = preview(
        "{Hi|Hello} {first_name}, try {product} in {city}",
        declared,
        PreviewInput(recipient=PeerView(first_name="Ann"), samples=5, seed=42),
    )
    assert again.samples == out.samples  # a seed fixes the spintax choices


def test_preview_warns_about_length() -> None:
    out = preview("x" * 5000, [], PreviewInput(samples=1))
    assert out.max_length == 5000 and any("4096" in w for w in out.warnings)
