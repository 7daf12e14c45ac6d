from pathlib import Path

from tunelab.config.reference import reference


def test_docs_config_md_matches_the_schema():
    doc = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert doc.read_text() == reference(), (
        "regenerate: python -m tunelab.config.reference > docs/config.md"
    )
    assert "`train.early_stopping.patience`" in reference()
