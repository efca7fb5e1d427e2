-- The A/B experiment that every host serves (api/serving/experiment_arms.py): one row, its
-- arms as JSON (NULL: no experiment), and a version that every change moves by one, so that a
-- change based on an older version is refused (If-Match). Its generation row tells workers.
CREATE TABLE experiment (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL,
    arms TEXT,
    actor TEXT NOT NULL,
    changed_at DOUBLE PRECISION NOT NULL
);
INSERT INTO generations (name, value)
VALUES ('experiment', (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT);
