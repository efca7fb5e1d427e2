<?php
/**
 * Plugin Name:       Related Articles
 * Description:       "You Might Also Like" boxes from your related-article service, kept live as you publish.
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      8.1
 * License:           MIT
 * Text Domain:       related-articles
 *
 * @package RelatedArticles
 */

declare(strict_types=1);

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

const RELATED_ARTICLES_DIR = __DIR__;

require_once __DIR__ . '/includes/class-settings.php';
require_once __DIR__ . '/includes/class-client.php';
require_once __DIR__ . '/includes/class-queue.php';
require_once __DIR__ . '/includes/class-sync.php';
require_once __DIR__ . '/includes/class-display.php';
require_once __DIR__ . '/includes/class-admin.php';

RelatedArticles\Sync::register();
// Deactivated, the plugin retries nothing; the queue is kept and retried when it is back.
register_deactivation_hook(
	__FILE__,
	static function (): void {
		wp_clear_scheduled_hook( RelatedArticles\Sync::CRON_HOOK );
	}
);
register_activation_hook(
	__FILE__,
	static function (): void {
		RelatedArticles\Queue::install(); // The queue's table (one row per post waiting).
		RelatedArticles\Sync::schedule();
	}
);
RelatedArticles\Display::register( __FILE__ );
if ( is_admin() ) {
	RelatedArticles\Admin::register();
}
