"""docs/config.md is generated from the config model (swarmstack/config/reference.py), and
every key has a description: the reference cannot drift from what `validate` accepts."""

from __future__ import annotations

from pathlib import Path

from swarmstack.config.model import ClusterConfig
from swarmstack.config.reference import models, reference, undocumented

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def test_docs_config_md_is_what_the_model_generates() -> None:
    assert DOC.read_text() == reference(), (
        "docs/config.md is stale: run `.venv/bin/python -m swarmstack.config.reference > docs/config.md`")


def test_every_key_says_what_it_is() -> None:
    assert undocumented() == []


def test_every_key_of_the_model_is_in_the_reference() -> None:
    text = reference()
    for _, model in models():
        assert f"## {model.__name__}\n" in text
        for name, info in model.model_fields.items():
            assert f"| `{info.alias or name}` |" in text
    assert len(models()) >= 10 and models()[0] == ("swarmstack:cluster", ClusterConfig)
