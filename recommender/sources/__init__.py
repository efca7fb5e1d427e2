"""Where articles come from besides local JSONL/CSV/text files: the web a newsroom publishes.

`limits` bounds what any reader takes in; `fetch` is the one polite HTTP client (size caps,
redirect policy, robots.txt, retries, conditional requests); `syndication` (RSS/Atom),
`sitemaps`, `pages` (article extraction) and `wordpress` turn what it fetches into raw records,
which `recommender.feeds` validates like any other feed record.
"""

#: Default User-Agent of every request (RECOMMENDER_FETCH_USER_AGENT).
USER_AGENT = "related-articles/0.1 (+https://github.com/related-articles)"
