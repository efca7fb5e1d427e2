"""Measuring the ranking offline: `metrics` (nDCG, recall, MRR, ...), `relevance` (what counts as
related: shared labels or a qrels file) and `more_like_this` (the Elasticsearch MLT baseline).
The run itself, over a built version, is `index.evaluation`."""
