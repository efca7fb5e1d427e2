"""The web a reindex reads from: `fetch`, the one polite HTTP client (size caps, redirect
policy, robots.txt, retries, conditional requests), its `fetch_cache`, and `web_urls`."""

#: Default User-Agent of every request (RECOMMENDER_FETCH_USER_AGENT).
USER_AGENT = "related-articles/0.1 (+https://github.com/related-articles)"
