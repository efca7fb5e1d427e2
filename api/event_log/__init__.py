"""The impression log: every accepted impression and click, durable and bounded, for learning.

`logged_events` is the record and the `EventLog` interface (it imports nothing of ours);
`file_event_log` and `postgres_event_log` are its backends, `event_log_factory` picks one,
`event_log_writer` feeds it from a bounded queue off the request path, and `event_log_export`
writes it out for analysts.
"""
