"""The web's formats as raw records: `syndication` (RSS/Atom), `sitemaps`, `wordpress`, `pages`
(article extraction), dispatched by `web_sources`; `safe_xml`, `html_text` and `slugs` help them."""
