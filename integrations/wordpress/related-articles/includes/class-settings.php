<?php
/**
 * The plugin's one option, read with defaults.
 *
 * @package RelatedArticles
 */

declare(strict_types=1);

namespace RelatedArticles;

/** The settings, stored as one option (`related_articles_settings`). */
final class Settings {
	public const OPTION = 'related_articles_settings';

	public const DEFAULTS = array(
		'url'            => '',
		'token'          => '',
		'layout'         => 'cards',
		'count'          => 4,
		'heading'        => 'You Might Also Like',
		'placement'      => 'after_content',
		'placement_name' => '',
	);

	/** Every setting, defaults filled in. */
	public static function all(): array {
		$stored = get_option( self::OPTION, array() );
		return array_merge( self::DEFAULTS, is_array( $stored ) ? $stored : array() );
	}

	/** One setting. */
	public static function get( string $name ): mixed {
		return self::all()[ $name ];
	}

	/** The service's base URL without a trailing slash ('' when not set up). */
	public static function service_url(): string {
		return rtrim( (string) self::get( 'url' ), '/' );
	}

	/**
	 * Clean a submitted form: an empty token field keeps the stored token (it is never shown
	 * back, so the form cannot resubmit it).
	 */
	public static function sanitize( mixed $input ): array {
		$input   = is_array( $input ) ? $input : array();
		$current = self::all();
		$token   = trim( (string) ( $input['token'] ?? '' ) );
		$count   = (int) ( $input['count'] ?? $current['count'] );
		return array(
			'url'            => esc_url_raw( trim( (string) ( $input['url'] ?? '' ) ), array( 'http', 'https' ) ),
			'token'          => '' === $token ? $current['token'] : $token,
			'layout'         => 'list' === ( $input['layout'] ?? '' ) ? 'list' : 'cards',
			'count'          => max( 1, min( 50, $count ) ),
			'heading'        => sanitize_text_field( (string) ( $input['heading'] ?? $current['heading'] ) ),
			'placement'      => 'manual' === ( $input['placement'] ?? '' ) ? 'manual' : 'after_content',
			'placement_name' => self::placement_name( $input['placement_name'] ?? '' ),
		);
	}

	/**
	 * A placement name as the service takes it (`placement=`, `data-placement`: 1-32 of
	 * a-z 0-9 _ -), lower-cased; '' for an empty or unusable one, and for `default`, which is
	 * what a box without a name is.
	 */
	public static function placement_name( mixed $name ): string {
		$name = strtolower( trim( is_scalar( $name ) ? (string) $name : '' ) );
		return 1 === preg_match( '/^[a-z0-9_-]{1,32}$/', $name ) && 'default' !== $name ? $name : '';
	}

	/** The token as shown back: its last 4 characters only. */
	public static function masked_token(): string {
		$token = (string) self::get( 'token' );
		return '' === $token ? '' : str_repeat( '•', 8 ) . substr( $token, -4 );
	}
}
