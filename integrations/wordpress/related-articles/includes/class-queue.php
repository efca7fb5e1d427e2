<?php
/**
 * The retry queue: a table of the plugin's own, one row per post whose change has not yet
 * reached the service. Every write is one atomic statement on that post's row (`INSERT … ON
 * DUPLICATE KEY UPDATE`, `DELETE … WHERE ticket = …`), so saves of different posts never
 * overwrite each other, and a save racing WP-Cron's retry is neither lost nor outrun.
 *
 * @package RelatedArticles
 */

declare(strict_types=1);

namespace RelatedArticles;

/**
 * Rows: post_id (key), slug (shown, and retracted if the post is deleted), action, ticket,
 * attempts, next_at, error, since.
 *
 * A sync marks its post's row with a fresh ticket before it reads the post, and removes the row
 * afterwards only if the ticket is still its own: a save that came in meanwhile changed the
 * ticket, so its change stays queued (or, if its own sync already removed the row, the row is
 * put back). Whichever sync finishes last, the newest state is sent after it.
 */
final class Queue {
	public const DB_VERSION     = '1';
	public const VERSION_OPTION = 'related_articles_db_version';
	/** The queue of 0.1.0: one option, moved into the table on upgrade. */
	public const LEGACY_OPTION = 'related_articles_queue';

	public static function table(): string {
		global $wpdb;
		return $wpdb->prefix . 'related_articles_queue';
	}

	/** Create the table (activation, or the first request after an upgrade). */
	public static function install(): void {
		global $wpdb;
		$table   = self::table();
		$collate = $wpdb->get_charset_collate();
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$wpdb->query(
			"CREATE TABLE IF NOT EXISTS $table (
				post_id BIGINT UNSIGNED NOT NULL,
				slug VARCHAR(200) NOT NULL DEFAULT '',
				action VARCHAR(10) NOT NULL DEFAULT 'upsert',
				ticket BIGINT UNSIGNED NOT NULL DEFAULT 0,
				attempts INT UNSIGNED NOT NULL DEFAULT 0,
				next_at BIGINT NOT NULL DEFAULT 0,
				error TEXT NULL,
				since BIGINT NOT NULL DEFAULT 0,
				PRIMARY KEY (post_id),
				KEY next_at (next_at)
			) $collate"
		);
		$legacy = get_option( self::LEGACY_OPTION );
		if ( is_array( $legacy ) ) {
			foreach ( $legacy as $slug => $entry ) {
				self::requeue( (int) ( $entry['post_id'] ?? 0 ), (string) $slug, (string) ( $entry['action'] ?? 'upsert' ) );
			}
			delete_option( self::LEGACY_OPTION );
		}
		update_option( self::VERSION_OPTION, self::DB_VERSION, true );
	}

	/** Install once after an upgrade that did not go through activation. */
	public static function maybe_install(): void {
		if ( get_option( self::VERSION_OPTION ) !== self::DB_VERSION ) {
			self::install();
		}
	}

	/** Seconds before the first retry (constant RELATED_ARTICLES_RETRY_SECONDS, default 60). */
	public static function retry_base(): int {
		return defined( 'RELATED_ARTICLES_RETRY_SECONDS' ) ? max( 1, (int) RELATED_ARTICLES_RETRY_SECONDS ) : 60;
	}

	/**
	 * A sync of the post begins: its row gets a fresh ticket (created, due after the first
	 * delay, should the sync never finish). Returns the ticket.
	 */
	public static function mark( int $post_id, string $slug, string $action ): int {
		global $wpdb;
		$ticket = random_int( 1, PHP_INT_MAX );
		$now    = time();
		$table  = self::table();
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$wpdb->query( $wpdb->prepare( "INSERT INTO $table (post_id, slug, action, ticket, attempts, next_at, error, since) VALUES (%d, %s, %s, %d, 0, %d, '', %d) ON DUPLICATE KEY UPDATE slug = VALUES(slug), ticket = VALUES(ticket)", $post_id, $slug, $action, $ticket, $now + self::retry_base(), $now ) );
		return $ticket;
	}

	/**
	 * The sync that holds `$ticket` succeeded: its row goes, unless a newer change marked it
	 * meanwhile. If the row is gone already, a newer change's sync finished first and this one
	 * may have overwritten it at the service: the post is queued again, due now.
	 */
	public static function done( int $post_id, int $ticket, string $slug ): void {
		global $wpdb;
		$table = self::table();
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$removed = $wpdb->query( $wpdb->prepare( "DELETE FROM $table WHERE post_id = %d AND ticket = %d", $post_id, $ticket ) );
		if ( 0 === $removed ) {
			self::requeue( $post_id, $slug, 'upsert' );
		}
	}

	/** Queue the post again, due now, under a new ticket (a sync in flight will not remove it). */
	private static function requeue( int $post_id, string $slug, string $action ): void {
		global $wpdb;
		$now   = time();
		$table = self::table();
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$wpdb->query( $wpdb->prepare( "INSERT INTO $table (post_id, slug, action, ticket, attempts, next_at, error, since) VALUES (%d, %s, %s, %d, 0, %d, '', %d) ON DUPLICATE KEY UPDATE ticket = VALUES(ticket), next_at = LEAST(next_at, VALUES(next_at))", $post_id, $slug, $action, random_int( 1, PHP_INT_MAX ), $now, $now ) );
		Sync::schedule();
	}

	/**
	 * A call failed: one more attempt, the next after 1, 2, 4 ... retry delays (at most an hour),
	 * or listed as failed at once when the service refused it. The ticket stays the newest mark's.
	 */
	public static function fail( int $post_id, string $slug, string $action, string $error, bool $refused ): void {
		global $wpdb;
		$now   = time();
		$table = self::table();
		$base  = self::retry_base();
		$first = $refused ? Sync::FAILED_AFTER : 1;
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$wpdb->query( $wpdb->prepare( "INSERT INTO $table (post_id, slug, action, ticket, attempts, next_at, error, since) VALUES (%d, %s, %s, %d, %d, %d, %s, %d) ON DUPLICATE KEY UPDATE slug = VALUES(slug), action = VALUES(action), error = VALUES(error), attempts = IF(%d, GREATEST(attempts + 1, %d), attempts + 1), next_at = %d + IF(%d, %d, LEAST(%d, %d * POW(2, LEAST(attempts - 1, 12))))", $post_id, $slug, $action, random_int( 1, PHP_INT_MAX ), $first, $now + ( $refused ? HOUR_IN_SECONDS : $base ), $error, $now, (int) $refused, Sync::FAILED_AFTER, $now, (int) $refused, HOUR_IN_SECONDS, HOUR_IN_SECONDS, $base ) );
		Sync::schedule();
	}

	/**
	 * The service's address or token changed: every queued change is due now, its backoff
	 * forgotten (attempts 0), so that the next WP-Cron run sends them to the service as it is
	 * set up now instead of waiting out delays earned against the old one.
	 */
	public static function retry_all_now(): void {
		global $wpdb;
		$table = self::table();
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$wpdb->query( $wpdb->prepare( "UPDATE $table SET attempts = 0, next_at = %d", time() ) );
	}

	/** Every row, by post (oldest first). */
	public static function all(): array {
		global $wpdb;
		$table = self::table();
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$rows = $wpdb->get_results( "SELECT * FROM $table ORDER BY since, post_id", ARRAY_A );
		return is_array( $rows ) ? $rows : array();
	}

	/** The rows whose retry is due. */
	public static function due(): array {
		global $wpdb;
		$table = self::table();
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$rows = $wpdb->get_results( $wpdb->prepare( "SELECT * FROM $table WHERE next_at <= %d ORDER BY next_at", time() ), ARRAY_A );
		return is_array( $rows ) ? $rows : array();
	}

	/** When the earliest retry is due; null when nothing waits. */
	public static function next_due(): ?int {
		global $wpdb;
		$table = self::table();
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$next = $wpdb->get_var( "SELECT MIN(next_at) FROM $table" );
		return null === $next ? null : (int) $next;
	}

	/** Uninstall: the table goes. */
	public static function drop(): void {
		global $wpdb;
		$table = self::table();
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		$wpdb->query( "DROP TABLE IF EXISTS $table" );
		delete_option( self::VERSION_OPTION );
	}
}
