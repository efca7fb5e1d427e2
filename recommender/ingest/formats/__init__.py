"""Every format as raw records: the files' `jsonl_format`, `csv_format` and `text_format` (over
`record_lines`), and the web's `syndication` (RSS/Atom), `sitemaps`, `wordpress`, `pages`
(article extraction), dispatched by `web_sources`; `safe_xml`, `html_text` and `slugs` help them."""
