"""The ranking signals: one module each behind `base.RankingSignal`, listed in `registry`.

To add a signal, write its module here and add it to `registry.SIGNALS`; versions, the live
overlay, drafts, precomputed neighbours, `Recommender.explain` and `recommender evaluate` take
it from there.
"""
