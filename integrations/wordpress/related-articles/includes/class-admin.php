<?php
/**
 * Settings → Related articles: the service, the box, a connection test, the sync queue and the
 * archive's backfill.
 *
 * @package RelatedArticles
 */

declare(strict_types=1);

namespace RelatedArticles;

use WP_Post;

/** The settings page. */
final class Admin {
	public const PAGE            = 'related-articles';
	public const BACKFILL_OPTION = 'related_articles_backfill';
	public const BACKFILL_BATCH  = 20;

	/** Posts per backfill request (constant RELATED_ARTICLES_BACKFILL_BATCH, default 20). */
	private static function batch(): int {
		return defined( 'RELATED_ARTICLES_BACKFILL_BATCH' ) ? max( 1, (int) RELATED_ARTICLES_BACKFILL_BATCH ) : self::BACKFILL_BATCH;
	}

	/** Hook into WordPress's admin. */
	public static function register(): void {
		add_action( 'admin_menu', array( self::class, 'menu' ) );
		add_action( 'admin_init', array( self::class, 'settings' ) );
		add_action( 'wp_ajax_related_articles_backfill', array( self::class, 'backfill' ) );
	}

	public static function menu(): void {
		add_options_page(
			__( 'Related articles', 'related-articles' ),
			__( 'Related articles', 'related-articles' ),
			'manage_options',
			self::PAGE,
			array( self::class, 'page' )
		);
	}

	public static function settings(): void {
		register_setting(
			'related_articles',
			Settings::OPTION,
			array(
				'type'              => 'array',
				'sanitize_callback' => array( Settings::class, 'sanitize' ),
			)
		);
	}

	/** What `/readyz` and `/v1/index` answer, in words. */
	public static function connection_report(): array {
		$lines = array();
		[ $status, $ready, $error ] = Client::request( 'GET', '/readyz' );
		if ( 0 === $status ) {
			return array( false, array( sprintf( __( 'The service cannot be reached: %s.', 'related-articles' ), $error ) ) );
		}
		$is_ready = 200 === $status && is_array( $ready ) && 'ready' === ( $ready['status'] ?? '' );
		if ( $is_ready ) {
			$lines[] = sprintf(
				__( 'The service is ready, serving index version %1$s; its cache is %2$s and its database %3$s.', 'related-articles' ),
				$ready['index_version'] ?? '?',
				$ready['cache'] ?? '?',
				$ready['database'] ?? '?'
			);
			foreach ( (array) ( $ready['warnings'] ?? array() ) as $warning ) {
				$lines[] = sprintf( __( 'Warning: %s', 'related-articles' ), is_string( $warning ) ? $warning : wp_json_encode( $warning ) );
			}
		} else {
			$detail  = is_array( $ready ) ? ( $ready['detail'] ?? '' ) : '';
			$lines[] = sprintf( __( 'The service answers but is not ready (HTTP %1$d): %2$s', 'related-articles' ), $status, is_string( $detail ) ? $detail : '' );
		}
		[ $status, $index ] = Client::request( 'GET', '/v1/index' );
		if ( 200 === $status && is_array( $index ) ) {
			$lines[] = sprintf(
				__( 'It holds %1$s articles, embedded with %2$s, built %3$s.', 'related-articles' ),
				number_format_i18n( (int) ( $index['articles'] ?? 0 ) ),
				$index['model'] ?? '?',
				$index['built_at'] ?? $index['created_at'] ?? '?'
			);
		}
		[ $status, , $error ] = Client::request( 'DELETE', '/v1/articles/related-articles-connection-test', null, true );
		if ( 401 === $status || 403 === $status ) {
			$lines[] = __( 'The admin token is refused: posts cannot be synced.', 'related-articles' );
			$is_ready = false;
		} elseif ( 404 === $status || 204 === $status ) {
			$lines[] = __( 'The admin token is accepted: posts are synced as you publish.', 'related-articles' );
		} else {
			$lines[] = sprintf( __( 'The admin token could not be checked: %s.', 'related-articles' ), $error ?? "HTTP $status" );
		}
		return array( $is_ready, $lines );
	}

	/** The settings page. */
	public static function page(): void {
		if ( ! current_user_can( 'manage_options' ) ) {
			return;
		}
		$s = Settings::all();
		echo '<div class="wrap"><h1>' . esc_html__( 'Related articles', 'related-articles' ) . '</h1>';
		if ( isset( $_GET['related-test'] ) && check_admin_referer( 'related-articles-test' ) ) {
			[ $ok, $lines ] = self::connection_report();
			printf( '<div id="related-articles-test" class="notice %s"><p>%s</p></div>', $ok ? 'notice-success' : 'notice-error', implode( '<br>', array_map( 'esc_html', $lines ) ) );
		}
		echo '<form method="post" action="options.php">';
		settings_fields( 'related_articles' );
		$name = Settings::OPTION;
		echo '<table class="form-table" role="presentation">';
		printf(
			'<tr><th><label for="related-url">%s</label></th><td><input id="related-url" class="regular-text" type="url" name="%s[url]" value="%s" placeholder="https://related.example.com"><p class="description">%s</p></td></tr>',
			esc_html__( 'Service URL', 'related-articles' ),
			esc_attr( $name ),
			esc_attr( $s['url'] ),
			esc_html__( 'Where the related-article service answers; it must allow this site in RECOMMENDER_CORS_ORIGINS.', 'related-articles' )
		);
		printf(
			'<tr><th><label for="related-token">%s</label></th><td><input id="related-token" class="regular-text" type="password" autocomplete="off" name="%s[token]" value="" placeholder="%s"><p class="description">%s</p></td></tr>',
			esc_html__( 'Admin token', 'related-articles' ),
			esc_attr( $name ),
			esc_attr( Settings::masked_token() ),
			esc_html( '' === $s['token'] ? __( 'RECOMMENDER_ADMIN_TOKEN of the service.', 'related-articles' ) : sprintf( __( 'Stored (%s); leave empty to keep it.', 'related-articles' ), Settings::masked_token() ) )
		);
		printf(
			'<tr><th><label for="related-layout">%s</label></th><td><select id="related-layout" name="%s[layout]"><option value="cards"%s>%s</option><option value="list"%s>%s</option></select></td></tr>',
			esc_html__( 'Layout', 'related-articles' ),
			esc_attr( $name ),
			selected( $s['layout'], 'cards', false ),
			esc_html__( 'Cards', 'related-articles' ),
			selected( $s['layout'], 'list', false ),
			esc_html__( 'List', 'related-articles' )
		);
		printf(
			'<tr><th><label for="related-count">%s</label></th><td><input id="related-count" type="number" min="1" max="50" name="%s[count]" value="%d"></td></tr>',
			esc_html__( 'Number of articles', 'related-articles' ),
			esc_attr( $name ),
			(int) $s['count']
		);
		printf(
			'<tr><th><label for="related-heading">%s</label></th><td><input id="related-heading" class="regular-text" type="text" name="%s[heading]" value="%s"></td></tr>',
			esc_html__( 'Heading', 'related-articles' ),
			esc_attr( $name ),
			esc_attr( $s['heading'] )
		);
		printf(
			'<tr><th>%s</th><td><fieldset><label><input type="radio" name="%2$s[placement]" value="after_content"%3$s> %4$s</label><br><label><input type="radio" name="%2$s[placement]" value="manual"%5$s> %6$s</label></fieldset></td></tr>',
			esc_html__( 'Where the box goes', 'related-articles' ),
			esc_attr( $name ),
			checked( $s['placement'], 'after_content', false ),
			esc_html__( 'After the content of every single post', 'related-articles' ),
			checked( $s['placement'], 'manual', false ),
			esc_html__( 'Only where a "Related articles" block or [related_articles] shortcode puts it', 'related-articles' )
		);
		printf(
			'<tr><th><label for="related-placement-name">%s</label></th><td><input id="related-placement-name" class="regular-text" type="text" maxlength="32" name="%s[placement_name]" value="%s" placeholder="default"><p class="description">%s</p></td></tr>',
			esc_html__( 'Placement', 'related-articles' ),
			esc_attr( $name ),
			esc_attr( $s['placement_name'] ),
			esc_html__( 'The name the service reports this box\'s impressions and clicks under (e.g. article-end; a-z, 0-9, _ and -). Empty: default. A block or shortcode may name its own with placement="...".', 'related-articles' )
		);
		echo '</table>';
		submit_button();
		echo '</form>';

		$test_url = wp_nonce_url( add_query_arg( array( 'page' => self::PAGE, 'related-test' => 1 ), admin_url( 'options-general.php' ) ), 'related-articles-test' );
		printf( '<p><a id="related-articles-test-button" class="button" href="%s">%s</a></p>', esc_url( $test_url ), esc_html__( 'Test connection', 'related-articles' ) );

		self::queue_table();
		self::backfill_section();
		echo '</div>';
	}

	private static function queue_table(): void {
		echo '<h2>' . esc_html__( 'Syncs waiting', 'related-articles' ) . '</h2>';
		$queue = Sync::queue();
		if ( ! $queue ) {
			echo '<p id="related-articles-queue-empty">' . esc_html__( 'Every change has reached the service.', 'related-articles' ) . '</p>';
			return;
		}
		echo '<table id="related-articles-queue" class="widefat striped"><thead><tr><th>' . esc_html__( 'Article', 'related-articles' ) . '</th><th>' . esc_html__( 'Change', 'related-articles' ) . '</th><th>' . esc_html__( 'State', 'related-articles' ) . '</th><th>' . esc_html__( 'Attempts', 'related-articles' ) . '</th><th>' . esc_html__( 'Next try', 'related-articles' ) . '</th><th>' . esc_html__( 'Last error', 'related-articles' ) . '</th></tr></thead><tbody>';
		foreach ( $queue as $slug => $entry ) {
			$failed = (int) $entry['attempts'] >= Sync::FAILED_AFTER;
			printf(
				'<tr data-slug="%s"><td>%s</td><td>%s</td><td>%s</td><td>%d</td><td>%s</td><td>%s</td></tr>',
				esc_attr( (string) $slug ),
				esc_html( (string) $slug ),
				esc_html( 'delete' === $entry['action'] ? __( 'retract', 'related-articles' ) : __( 'publish', 'related-articles' ) ),
				esc_html( $failed ? __( 'failed', 'related-articles' ) : __( 'pending', 'related-articles' ) ),
				(int) $entry['attempts'],
				esc_html( human_time_diff( time(), (int) $entry['next_at'] ) ),
				esc_html( (string) $entry['error'] )
			);
		}
		echo '</tbody></table>';
	}

	/** Published posts to push, after post ID `$after`, in ID order. */
	private static function published_after( int $after, int $limit ): array {
		global $wpdb;
		$types        = Sync::post_types();
		$placeholders = implode( ',', array_fill( 0, count( $types ), '%s' ) );
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		return array_map( 'intval', $wpdb->get_col( $wpdb->prepare( "SELECT ID FROM {$wpdb->posts} WHERE post_status = 'publish' AND post_password = '' AND post_type IN ($placeholders) AND ID > %d ORDER BY ID LIMIT %d", array_merge( $types, array( $after, $limit ) ) ) ) );
	}

	private static function published_count( int $after = 0 ): int {
		global $wpdb;
		$types        = Sync::post_types();
		$placeholders = implode( ',', array_fill( 0, count( $types ), '%s' ) );
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		return (int) $wpdb->get_var( $wpdb->prepare( "SELECT COUNT(*) FROM {$wpdb->posts} WHERE post_status = 'publish' AND post_password = '' AND post_type IN ($placeholders) AND ID > %d", array_merge( $types, array( $after ) ) ) );
	}

	/** Where a backfill stands: {after, done, failed, total, finished}. */
	public static function backfill_state(): array {
		$state = get_option( self::BACKFILL_OPTION, array() );
		return is_array( $state ) && $state ? $state : array( 'after' => 0, 'done' => 0, 'failed' => 0, 'total' => 0, 'finished' => true );
	}

	/** AJAX: push one batch; `restart=1` starts over, otherwise it goes on where it stopped. */
	public static function backfill(): void {
		check_ajax_referer( 'related-articles-backfill' );
		if ( ! current_user_can( 'manage_options' ) ) {
			wp_send_json_error( null, 403 );
		}
		$state = self::backfill_state();
		if ( ! empty( $_POST['restart'] ) || $state['finished'] ) {
			$state = array( 'after' => 0, 'done' => 0, 'failed' => 0, 'total' => self::published_count(), 'finished' => false );
		}
		foreach ( self::published_after( (int) $state['after'], self::batch() ) as $id ) {
			$post = get_post( $id );
			if ( $post instanceof WP_Post ) {
				if ( Sync::sync_post( $post ) ) {
					++$state['done'];
				} else {
					++$state['failed']; // Queued: WP-Cron retries it.
				}
			}
			$state['after'] = $id;
		}
		$state['finished'] = 0 === self::published_count( (int) $state['after'] );
		update_option( self::BACKFILL_OPTION, $state, false );
		wp_send_json_success( $state );
	}

	private static function backfill_section(): void {
		$state = self::backfill_state();
		$label = $state['finished'] ? __( 'Sync all posts', 'related-articles' ) : sprintf( __( 'Resume sync (%1$d of %2$d)', 'related-articles' ), $state['done'] + $state['failed'], $state['total'] );
		echo '<h2>' . esc_html__( 'Your archive', 'related-articles' ) . '</h2>';
		echo '<p>' . esc_html__( 'Push every published post to the service, in batches; for a large archive, run the nightly `recommender reindex --source wordpress+https://YOUR-SITE` instead.', 'related-articles' ) . '</p>';
		printf(
			'<p><button type="button" id="related-articles-backfill" class="button" data-nonce="%s" data-ajax="%s">%s</button></p><progress id="related-articles-progress" max="%d" value="%d" style="width:30em"></progress> <span id="related-articles-progress-text"></span>',
			esc_attr( wp_create_nonce( 'related-articles-backfill' ) ),
			esc_url( admin_url( 'admin-ajax.php' ) ),
			esc_html( $label ),
			max( 1, (int) $state['total'] ),
			(int) ( $state['done'] + $state['failed'] )
		);
		?>
<script>
( function () {
	var button = document.getElementById( 'related-articles-backfill' );
	var bar = document.getElementById( 'related-articles-progress' );
	var text = document.getElementById( 'related-articles-progress-text' );
	function step() {
		var body = new FormData();
		body.append( 'action', 'related_articles_backfill' );
		body.append( '_ajax_nonce', button.dataset.nonce );
		return fetch( button.dataset.ajax, { method: 'POST', body: body, credentials: 'same-origin' } )
			.then( function ( r ) { return r.json(); } )
			.then( function ( answer ) {
				if ( ! answer.success ) { throw new Error( 'refused' ); }
				var s = answer.data, seen = s.done + s.failed;
				bar.max = Math.max( 1, s.total ); bar.value = seen;
				text.textContent = seen + ' / ' + s.total + ( s.failed ? ' (' + s.failed + ' queued for retry)' : '' );
				return s.finished ? s : step();
			} );
	}
	button.addEventListener( 'click', function () {
		button.disabled = true;
		step().then( function () { text.textContent += ' — done'; }, function ( e ) { text.textContent += ' — stopped (' + e.message + '): press again to resume'; } )
			.finally( function () { button.disabled = false; } );
	} );
} )();
</script>
		<?php
	}
}
