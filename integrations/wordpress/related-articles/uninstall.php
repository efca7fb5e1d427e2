<?php
/**
 * Deleting the plugin removes its settings (the token with them), its queue and its marks.
 *
 * @package RelatedArticles
 */

declare(strict_types=1);

if ( ! defined( 'WP_UNINSTALL_PLUGIN' ) ) {
	exit;
}

foreach ( array( 'related_articles_settings', 'related_articles_queue', 'related_articles_backfill', 'related_articles_generation' ) as $related_articles_option ) {
	delete_option( $related_articles_option );
}
delete_post_meta_by_key( '_related_articles_slug' );
wp_clear_scheduled_hook( 'related_articles_retry' );
