<?php
/**
 * Deleting the plugin removes its settings (the token with them), its queue (its table) and its
 * marks.
 *
 * @package RelatedArticles
 */

declare(strict_types=1);

if ( ! defined( 'WP_UNINSTALL_PLUGIN' ) ) {
	exit;
}

global $wpdb;
$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}related_articles_queue" ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery
foreach ( array( 'related_articles_settings', 'related_articles_queue', 'related_articles_db_version', 'related_articles_backfill', 'related_articles_generation' ) as $related_articles_option ) {
	delete_option( $related_articles_option );
}
delete_post_meta_by_key( '_related_articles_slug' );
wp_clear_scheduled_hook( 'related_articles_retry' );
