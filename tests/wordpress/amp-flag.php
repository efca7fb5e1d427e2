<?php
/**
 * A must-use plugin of the test site only: the AMP plugin's public API as far as the Related
 * Articles plugin uses it, since the AMP plugin itself is not packaged in Debian.
 *
 * Like the AMP plugin (in its Reader and Transitional modes), a page is an AMP page when its URL
 * carries the AMP query var (`amp_get_slug()`, "amp": `?amp=1`), and `amp_is_request()` tells
 * so only once the query is parsed (before that it is wrong to ask, and it answers false).
 * Nothing of the AMP plugin's output is done here: no AMP validation, no sanitizers (which on a
 * real AMP site remove every script the theme prints), no paired AMP templates.
 *
 * @package RelatedArticlesTests
 */

declare(strict_types=1);

/** The AMP query var. */
function amp_get_slug(): string {
	return 'amp';
}

/** Whether the current request is for an AMP page. */
function amp_is_request(): bool {
	if ( ! did_action( 'parse_query' ) ) {
		_doing_it_wrong( __FUNCTION__, 'amp_is_request() is known once the query is parsed.', '2.0.0' );
		return false;
	}
	return false !== get_query_var( amp_get_slug(), false );
}

add_filter(
	'query_vars',
	static function ( array $vars ): array {
		$vars[] = amp_get_slug();
		return $vars;
	}
);
