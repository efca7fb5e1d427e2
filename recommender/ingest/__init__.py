"""Where articles come from: `feeds` (the registry from file suffix or URL scheme to reader, the
file readers, validation into Articles and the `FeedReport`), `formats/` (the web formats: RSS/
Atom, sitemaps, WordPress, article pages, dispatched by `formats.web_sources`), `web/` (the one
polite fetcher and its conditional cache), and what every reader shares: `options`, `limits`,
`listings`, `field_map`, `ingest_settings`."""
