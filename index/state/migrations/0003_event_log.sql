-- The impression log (docs/learning.md): one row per impression item shown and per click,
-- kept once (the primary key: a beacon written twice, by any host, is one row), pruned by
-- `day` after RECOMMENDER_EVENTS_RETENTION_DAYS.
CREATE TABLE event_log (
    source TEXT NOT NULL,
    impression TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('impression', 'click')),
    position INTEGER NOT NULL,
    target TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    day DATE NOT NULL,
    placement TEXT NOT NULL,
    arm TEXT NOT NULL,
    version TEXT NOT NULL,
    propensity DOUBLE PRECISION,
    PRIMARY KEY (source, impression, type, position)
);
CREATE INDEX event_log_day ON event_log (day, at);
