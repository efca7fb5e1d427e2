"""Why an article is suggested, as the editors' page shows it."""

from __future__ import annotations

from pathlib import Path

from index.serving.version_loader import load_recommender
from tests.support.helpers import build_fake_index, synthetic_records


def test_shared_terms_leave_out_filler_words(tmp_path: Path) -> None:
    # Repeated by two stories only, the filler outweighs every topical word in TF-IDF.
    filler = " including despite good" * 5
    records = [
        {**record, "summary": record["summary"] + filler}
        if record["slug"] in {"volcano-0", "volcano-1"}
        else record
        for record in synthetic_records()
    ]
    settings, _ = build_fake_index(tmp_path / "data", records)
    recommender, _ = load_recommender(settings.index)
    why = recommender.explain(recommender.row_of("volcano-0"), recommender.row_of("volcano-1"))
    assert why["shared_terms"] == ["volcano", "eruption", "lava", "ash", "iceland"]
