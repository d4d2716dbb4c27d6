"""Persona and style preset files: shipped files load, errors name file and field."""

from __future__ import annotations

import pytest

from malles_graph.retail.personas import PersonaError, load_personas, load_styles, persona_text


def test_shipped_files_load():
    styles = load_styles()
    assert {"neutral", "bargain_hunter", "brand_loyal", "stock_upper", "frugal_minimalist"} <= set(styles)
    personas = load_personas("retail_households.yaml")
    assert len(personas) >= 4
    family = next(p for p in personas if p.name == "family-of-four")
    assert family.style == styles["stock_upper"]
    assert "family-of-four, age 35-39" in persona_text(family)


def test_inline_style_and_local_presets(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("styles:\n  mine: {loss_aversion: 4}\npersonas:\n"
                    "  - {name: a, style: mine}\n  - {name: b, style: {quantity_propensity: 0.9}}\n")
    a, b = load_personas(path, presets={})
    assert a.style.loss_aversion == 4 and b.style.quantity_propensity == 0.9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("personas:\n  - {name: a, style: {loss_aversion: 9}}\n", "personas.0.style.loss_aversion"),
        ("personas:\n  - {name: a, style: nope}\n", "personas.0.style: unknown style preset 'nope'"),
        ("personas:\n  - {name: a}\n  - {name: a}\n", "personas.1.name: duplicate"),
        ("personas:\n  - {name: a, shoe_size: 9}\n", "personas.0.shoe_size"),
        ("personas: []\n", "non-empty list"),
        ("personas: [\n", "not valid YAML"),
    ],
)
def test_errors_name_file_and_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PersonaError) as err:
        load_personas(path, presets={})
    assert message in str(err.value) and str(path) in str(err.value)


def test_bad_style_preset_file(tmp_path):
    path = tmp_path / "styles.yaml"
    path.write_text("styles:\n  x: {discount_sensitivity: 2}\n")
    with pytest.raises(PersonaError, match="styles.x.discount_sensitivity"):
        load_styles(path)
    with pytest.raises(PersonaError, match="not found"):
        load_styles(tmp_path / "missing.yaml")
