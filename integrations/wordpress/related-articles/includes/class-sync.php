<?php
/**
 * Live sync: every publish and update of a published post is sent to the service at once, and
 * every post that stops being public is retracted. A failed call is queued and retried by
 * WP-Cron with backoff; the editor's save never waits longer than the client's timeout.
 *
 * @package RelatedArticles
 */

declare(strict_types=1);

namespace RelatedArticles;

use WP_Post;

/** Pushes posts to the admin API (`PUT`/`DELETE /v1/articles/{slug}`). */
final class Sync {
	public const SLUG_META    = '_related_articles_slug';
	/**
	 * A recurring WP-Cron event, every retry delay (Queue::retry_base()), whatever the queue:
	 * each row carries its own next try. Being always there, it is written once, not on every
	 * failed call, so it is not lost to concurrent writes of WordPress's `cron` option.
	 */
	public const CRON_HOOK = 'related_articles_retry';
	/** The service's slug rule (recommender/articles.py SLUG_PATTERN). */
	public const SLUG_PATTERN = '/^[a-z0-9][a-z0-9-]*$/';
	/** After this many failed attempts an entry is listed as failed (and retried hourly). */
	public const FAILED_AFTER = 5;
	/** Answers that the same request will get again: failed at once (editing the post retries). */
	public const REFUSED = array( 400, 413, 422 );

	/** Hook into WordPress. */
	public static function register(): void {
		add_action( 'wp_after_insert_post', array( self::class, 'on_saved' ), 20, 2 );
		add_action( 'before_delete_post', array( self::class, 'on_deleted' ), 10, 2 );
		add_action( self::CRON_HOOK, array( self::class, 'retry_due' ) );
		add_filter( 'cron_schedules', array( self::class, 'cron_schedules' ) );
		add_action( 'update_option_' . Settings::OPTION, array( self::class, 'on_settings_updated' ), 10, 2 );
		add_action(
			'init',
			static function (): void {
				Queue::maybe_install();
				self::schedule();
			}
		);
	}

	/** The post types that are synced (filter `related_articles_post_types`). */
	public static function post_types(): array {
		return (array) apply_filters( 'related_articles_post_types', array( 'post' ) );
	}

	/**
	 * The article's slug, the same one `recommender reindex --source wordpress+https://SITE`
	 * derives: the post's slug (`post_name`), folded like the service's canonical_slug
	 * (lowercase, `_` to `-`). Null when the service would refuse it (e.g. a non-ASCII slug).
	 */
	public static function slug( WP_Post $post ): ?string {
		// A trashed post's name carries `__trashed`; its article is the one published before.
		$name = preg_replace( '/__trashed$/', '', trim( urldecode( $post->post_name ) ) ) ?? '';
		$slug = str_replace( '_', '-', strtolower( $name ) );
		return ( '' !== $slug && strlen( $slug ) <= 200 && preg_match( self::SLUG_PATTERN, $slug ) ) ? $slug : null;
	}

	/** Whether a post belongs in the index: published, public, no password. */
	public static function is_public( WP_Post $post ): bool {
		return 'publish' === $post->post_status && '' === $post->post_password
			&& in_array( $post->post_type, self::post_types(), true );
	}

	/**
	 * Whether there is a service to sync with: until the URL and the token are set nothing is
	 * sent or queued ("Sync all posts" catches up).
	 */
	public static function configured(): bool {
		return '' !== Settings::service_url() && '' !== (string) Settings::get( 'token' );
	}

	/** `wp_after_insert_post`: runs after the post's terms and meta are saved. */
	public static function on_saved( int $post_id, WP_Post $post ): void {
		if ( ! self::configured() || wp_is_post_revision( $post ) || wp_is_post_autosave( $post ) ) {
			return;
		}
		if ( ! in_array( $post->post_type, self::post_types(), true ) ) {
			return;
		}
		self::sync_post( $post );
	}

	/** `before_delete_post`: a post deleted for good is retracted. */
	public static function on_deleted( int $post_id, ?WP_Post $post = null ): void {
		$slug = (string) get_post_meta( $post_id, self::SLUG_META, true );
		if ( '' === $slug || ! self::configured() ) {
			return;
		}
		$ticket = Queue::mark( $post_id, $slug, 'delete' );
		[ $ok, $error ] = self::send_delete( $slug, $post_id );
		if ( $ok ) {
			Queue::done( $post_id, $ticket, $slug );
		} else {
			Queue::fail( $post_id, $slug, 'delete', $error, false );
		}
	}

	/**
	 * Bring the service in line with one post: upsert it when public, retract what was sent
	 * for it otherwise (or under a slug it no longer has; the new slug is sent once the old one
	 * is retracted). The post's queue row is marked first and the post read afresh after, so a
	 * change saved meanwhile is either in what is sent or keeps the row queued (see Queue).
	 * Returns whether every call succeeded; a failure is queued for WP-Cron.
	 */
	public static function sync_post( WP_Post $post ): bool {
		$ticket = Queue::mark( $post->ID, (string) self::slug( $post ), self::is_public( $post ) ? 'upsert' : 'delete' );
		clean_post_cache( $post->ID );
		wp_cache_delete( $post->ID, 'post_meta' );
		$fresh = get_post( $post->ID );
		if ( ! $fresh instanceof WP_Post ) {
			// Deleted meanwhile: before_delete_post retracted it (or queued that).
			Queue::done( $post->ID, $ticket, '' );
			return true;
		}
		$post   = $fresh;
		$sent   = (string) get_post_meta( $post->ID, self::SLUG_META, true );
		$slug   = self::slug( $post );
		$ok     = true;
		$error  = '';
		$action = 'delete';
		$shown  = '' !== $sent ? $sent : (string) $slug;
		if ( self::is_public( $post ) && null !== $slug ) {
			$action = 'upsert';
			$shown  = $slug;
			if ( '' !== $sent && $sent !== $slug ) {
				[ $ok, $error ] = self::send_delete( $sent, $post->ID );
			}
			if ( $ok ) {
				[ $ok, $error, $refused ] = self::send_upsert( $post, $slug );
			}
		} elseif ( '' !== $sent ) {
			[ $ok, $error ] = self::send_delete( $sent, $post->ID );
		}
		if ( $ok ) {
			Queue::done( $post->ID, $ticket, $shown );
		} else {
			Queue::fail( $post->ID, $shown, $action, $error, $refused ?? false );
		}
		return $ok;
	}

	/** The article record the admin API takes, the fields `wordpress+https://` ingest reads. */
	public static function article( WP_Post $post ): array {
		Display::$suspended = true; // Rendering the content must not render our own box.
		try {
			$content = (string) apply_filters( 'the_content', $post->post_content );
			$excerpt = (string) apply_filters( 'the_excerpt', get_the_excerpt( $post ) );
		} finally {
			Display::$suspended = false;
		}
		$categories = self::term_names( $post, 'category' );
		$tags       = self::term_names( $post, 'post_tag' );
		$image      = get_the_post_thumbnail_url( $post, 'full' );
		$author     = get_the_author_meta( 'display_name', (int) $post->post_author );
		$record     = array(
			'title'        => self::text( get_the_title( $post ) ),
			'summary'      => self::text( $excerpt ),
			'body'         => self::text( $content ),
			'url'          => get_permalink( $post ),
			'image'        => $image ? $image : null,
			'author'       => '' !== $author ? $author : null,
			'section'      => $categories[0] ?? null,
			'tags'         => array_slice( array_values( array_unique( array_merge( $categories, $tags ) ) ), 0, 100 ),
			'published_at' => '0000-00-00 00:00:00' !== $post->post_date_gmt
				? str_replace( ' ', 'T', $post->post_date_gmt ) . 'Z' : null,
		);
		return array_filter( $record, static fn ( $value ) => null !== $value && '' !== $value && array() !== $value );
	}

	/** Term names of one taxonomy, by name (the order the REST API embeds them in). */
	private static function term_names( WP_Post $post, string $taxonomy ): array {
		$terms = get_the_terms( $post, $taxonomy );
		if ( ! is_array( $terms ) ) {
			return array();
		}
		$names = array_map( static fn ( $term ) => html_entity_decode( $term->name, ENT_QUOTES, 'UTF-8' ), $terms );
		sort( $names, SORT_STRING | SORT_FLAG_CASE );
		return $names;
	}

	/** Rendered HTML as plain text. */
	private static function text( string $html ): string {
		$text = html_entity_decode( wp_strip_all_tags( $html ), ENT_QUOTES | ENT_HTML5, 'UTF-8' );
		return trim( (string) preg_replace( '/\s+/u', ' ', $text ) );
	}

	/** `PUT` the article: [ok, error words, refused]. */
	private static function send_upsert( WP_Post $post, string $slug ): array {
		[ $status, , $error ] = Client::request( 'PUT', '/v1/articles/' . rawurlencode( $slug ), self::article( $post ), true );
		if ( 200 === $status ) {
			update_post_meta( $post->ID, self::SLUG_META, $slug );
			Display::forget_fragments();
			return array( true, '', false );
		}
		return array( false, $error ?? "HTTP $status", in_array( $status, self::REFUSED, true ) );
	}

	/** `DELETE` the article: [ok, error words]. */
	private static function send_delete( string $slug, int $post_id ): array {
		[ $status, , $error ] = Client::request( 'DELETE', '/v1/articles/' . rawurlencode( $slug ), null, true );
		if ( 204 === $status || 404 === $status ) { // 404: the service never had it.
			if ( (string) get_post_meta( $post_id, self::SLUG_META, true ) === $slug ) {
				delete_post_meta( $post_id, self::SLUG_META );
			}
			Display::forget_fragments();
			return array( true, '' );
		}
		return array( false, $error ?? "HTTP $status" );
	}

	/** The queue, for the settings page: slug => {action, post_id, attempts, next_at, error, since}. */
	public static function queue(): array {
		$queue = array();
		foreach ( Queue::all() as $row ) {
			$queue[ '' !== $row['slug'] ? $row['slug'] : '#' . $row['post_id'] ] = $row;
		}
		return $queue;
	}

	/** WP-Cron's interval for the retry event. */
	public static function cron_schedules( mixed $schedules ): array {
		$schedules                  = is_array( $schedules ) ? $schedules : array();
		$schedules[ self::CRON_HOOK ] = array(
			'interval' => Queue::retry_base(),
			'display'  => __( 'Related articles: retry delay', 'related-articles' ),
		);
		return $schedules;
	}

	/** A new service URL or token: the queue is retried at once (Queue::retry_all_now()). */
	public static function on_settings_updated( mixed $old, mixed $new ): void {
		$old = is_array( $old ) ? $old : array();
		$new = is_array( $new ) ? $new : array();
		foreach ( array( 'url', 'token' ) as $name ) {
			if ( ( $old[ $name ] ?? '' ) !== ( $new[ $name ] ?? '' ) ) {
				Queue::retry_all_now();
				return;
			}
		}
	}

	/** The recurring retry event, scheduled if it is not (a look at the loaded `cron` option). */
	public static function schedule(): void {
		if ( ! wp_next_scheduled( self::CRON_HOOK ) ) {
			wp_schedule_event( time() + Queue::retry_base(), self::CRON_HOOK, self::CRON_HOOK );
		}
	}

	/** WP-Cron: retry every queued post that is due, from the post as it is now. */
	public static function retry_due(): void {
		foreach ( Queue::due() as $row ) {
			$post_id = (int) $row['post_id'];
			clean_post_cache( $post_id );
			$post = get_post( $post_id );
			if ( $post instanceof WP_Post ) {
				self::sync_post( $post );
				continue;
			}
			// Deleted for good: retract what the row names (a 404 is fine).
			$slug = (string) $row['slug'];
			[ $ok, $error ] = '' !== $slug ? self::send_delete( $slug, $post_id ) : array( true, '' );
			if ( $ok ) {
				Queue::done( $post_id, (int) $row['ticket'], $slug );
			} else {
				Queue::fail( $post_id, $slug, 'delete', $error, false );
			}
		}
		self::schedule();
	}
}
