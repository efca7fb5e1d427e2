-- What `recommender db import --from-sqlite` has brought in already, so that a second run
-- changes nothing: one key per imported live change and audit record.
CREATE TABLE imported (key TEXT PRIMARY KEY, new_id BIGINT);
