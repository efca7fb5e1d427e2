-- The clicks of the impression log by time, for the popular articles that fill related lists
-- (api/serving/popular_articles.py recounts the last RECOMMENDER_POPULAR_HOURS every minute):
-- a partial index, so the count reads the clicks alone, not every impression item beside them.
CREATE INDEX event_log_clicks ON event_log (at) WHERE type = 'click';
