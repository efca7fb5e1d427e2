"""The `recommender` console script: the service's commands and the benchmarks, assembled
above both `api` and `bench` so that no import points up a layer."""
