"""The benchmarks' bookkeeping (no training): model selection ranks candidates on validation QLIKE only."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/"benchmarks"))
select_model = pytest.importorskip("select_model")


def _rec(sym, scores, best="har", best_q=0.5):
    return {"symbol": sym, "val_qlike": {c: list(v) for c, v in scores.items()},
            "validation": {"best_by_qlike": best, "metrics": {best: {"qlike": best_q}}}}


def test_selection_ranks_by_mean_validation_qlike_over_seeds():
    recs = [_rec("A", {"seed": [0.60, 0.70], "anchor": [0.45, 0.55]}),     # anchor 0.50 < seed 0.65
            _rec("B", {"seed": [0.40, 0.40], "anchor": [0.39, 0.45]}),     # seed 0.40 < anchor 0.42
            _rec("C", {"seed": [0.90, 0.90], "anchor": [0.30, 0.30]}, best_q=0.35)]
    s = select_model.summarise(recs, ["seed", "anchor"])
    assert s["mean_rank"] == {"seed": pytest.approx(5 / 3), "anchor": pytest.approx(4 / 3)}
    assert s["chosen"] == "anchor"
    assert s["beats_best_baseline"] == {"seed": 1, "anchor": 2}   # B: seed 0.40 < 0.5; A: anchor 0.50 is not < 0.5; C: 0.30 < 0.35
    assert s["by_symbol"]["A"]["candidates"]["seed"] == pytest.approx(0.65)
    md = select_model.markdown({"summary": s, "candidates": ["seed", "anchor"], "model_type": "advanced", "seeds": [42, 7]})
    assert "Chosen: **anchor**" in md and "| A |" in md and "test window not used" in md


def test_every_candidate_is_a_valid_params_override():
    from cryptovol.config import with_overrides, get_params
    for name, over in select_model.CANDIDATES.items():
        p = with_overrides(get_params(), **over)
        assert len(p["model"]["dropout"]) == len(p["model"]["lstm_units"]), name
