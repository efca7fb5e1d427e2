<?php
/**
 * The box: a block, a shortcode and (optionally) after every single post's content, each the
 * widget's non-blocking snippet (docs/widget.md), with the server-rendered fragment inside
 * `<noscript>` for readers without JavaScript (and alone on AMP pages).
 *
 * @package RelatedArticles
 */

declare(strict_types=1);

namespace RelatedArticles;

use WP_Post;

/** Renders "You Might Also Like" boxes. */
final class Display {
	/** True while the plugin renders a post's content to sync it: no box then. */
	public static bool $suspended = false;
	/** Seconds the server waits for the fragment before rendering the page without it. */
	public const FRAGMENT_TIMEOUT = 1;
	public const FRAGMENT_TTL     = 300;
	/** A failed fragment is not asked for again for this long, so a down service costs one wait. */
	public const FAILURE_TTL       = 30;
	public const GENERATION_OPTION = 'related_articles_generation';

	private static bool $snippet_sent = false;

	/** Hook into WordPress. */
	public static function register( string $plugin_file ): void {
		add_shortcode( 'related_articles', array( self::class, 'shortcode' ) );
		add_filter( 'the_content', array( self::class, 'after_content' ), 99 );
		add_action(
			'init',
			static function () use ( $plugin_file ): void {
				wp_register_script(
					'related-articles-block',
					plugins_url( 'assets/block.js', $plugin_file ),
					array( 'wp-blocks', 'wp-element', 'wp-i18n' ),
					'0.1.0',
					true
				);
				register_block_type(
					'related-articles/box',
					array(
						'api_version'     => 2,
						'editor_script'   => 'related-articles-block',
						'render_callback' => array( self::class, 'block' ),
						'attributes'      => array(
							'limit'     => array( 'type' => 'number' ),
							'layout'    => array( 'type' => 'string' ),
							'heading'   => array( 'type' => 'string' ),
							'placement' => array( 'type' => 'string' ),
						),
					)
				);
			}
		);
	}

	/** `[related_articles limit="4" layout="cards" heading="..." placement="sidebar"]`. */
	public static function shortcode( mixed $atts ): string {
		$atts = shortcode_atts(
			array(
				'limit'     => '',
				'layout'    => '',
				'heading'   => '',
				'placement' => '',
			),
			is_array( $atts ) ? $atts : array(),
			'related_articles'
		);
		return self::box_for_current_post( $atts );
	}

	/** The block's server-side render. */
	public static function block( array $attributes ): string {
		return self::box_for_current_post( $attributes );
	}

	/** Automatic placement after the content of single posts. */
	public static function after_content( string $content ): string {
		if ( self::$suspended || 'after_content' !== Settings::get( 'placement' ) ) {
			return $content;
		}
		if ( ! is_singular( Sync::post_types() ) || ! in_the_loop() || ! is_main_query() ) {
			return $content;
		}
		return $content . self::box_for_current_post( array() );
	}

	private static function box_for_current_post( array $options ): string {
		$post = get_post();
		if ( self::$suspended || ! $post instanceof WP_Post ) {
			return '';
		}
		$slug = Sync::slug( $post );
		return null === $slug ? '' : self::box( $slug, $options );
	}

	/** The box for the article `$slug` (also the page's own slug, left out of its list). */
	public static function box( string $slug, array $options = array() ): string {
		$api = Settings::service_url();
		if ( '' === $api ) {
			return '';
		}
		$limit   = (int) ( $options['limit'] ?? 0 );
		$limit   = $limit >= 1 && $limit <= 50 ? $limit : (int) Settings::get( 'count' );
		$layout  = in_array( $options['layout'] ?? '', array( 'cards', 'list' ), true ) ? $options['layout'] : Settings::get( 'layout' );
		$heading = '' !== (string) ( $options['heading'] ?? '' ) ? (string) $options['heading'] : (string) Settings::get( 'heading' );
		// The box's own name, else the site's; '' is the service's `default` placement.
		$placement = Settings::placement_name( $options['placement'] ?? '' );
		$placement = '' !== $placement ? $placement : (string) Settings::get( 'placement_name' );

		$fragment = self::fragment( $slug, $limit, $layout, $heading, $placement );
		if ( function_exists( 'amp_is_request' ) && amp_is_request() ) {
			return $fragment;
		}
		$box = sprintf(
			'<div class="related-articles-box" data-related-slug="%1$s" data-page-slug="%1$s" data-api="%2$s" data-limit="%3$d" data-heading="%4$s" data-layout="%5$s"%6$s></div>',
			esc_attr( $slug ),
			esc_attr( $api ),
			$limit,
			esc_attr( $heading ),
			esc_attr( $layout ),
			'' !== $placement ? ' data-placement="' . esc_attr( $placement ) . '"' : ''
		);
		$noscript = '' !== $fragment ? '<noscript>' . $fragment . '</noscript>' : '';
		return self::snippet( $api, $limit ) . $box . $noscript;
	}

	/** The snippet's loader and reserving style, once per page (docs/widget.md). */
	private static function snippet( string $api, int $limit ): string {
		$rows = 4 !== $limit ? sprintf( '[data-related-slug][data-limit="%1$d"]{--related-rows:%1$d}', $limit ) : '';
		if ( self::$snippet_sent ) {
			return '' !== $rows ? "<style>$rows</style>" : '';
		}
		self::$snippet_sent = true;
		$style = '[data-related-slug]{display:block;--related-c:var(--related-columns,2)}'
			. '@media(min-width:45em){[data-related-slug]{--related-c:var(--related-columns,4)}}'
			. '[data-related-slug]:not([data-related-state=ready])::before{content:"";display:block;padding-top:calc(3.9em + var(--related-rows,4)*var(--related-item-height,4.5em))}'
			. '[data-related-slug][data-layout=cards]:not([data-related-state=ready])::before{--r:round(up,var(--related-rows,4)/var(--related-c),1);padding-top:calc(2.9em + var(--r)*5.105em + var(--r)*9/16/var(--related-c)*(100% - 2em - (var(--related-c) - 1)*1em))}'
			. '[data-related-slug]:not([data-related-state]){animation:related-wait 0s 3s forwards}'
			. '@keyframes related-wait{to{height:0;overflow:hidden}}' . $rows;
		return sprintf(
			'<link rel="preload" as="script" href="%s" onload="document.head.append(Object.assign(document.createElement(\'script\'), {src: this.href}))"><style>%s</style>',
			esc_url( $api . '/widget.js' ),
			$style
		);
	}

	/**
	 * `GET /v1/articles/{slug}/related.html`, with a short timeout, cached in a transient; ''
	 * when the service is down or has nothing to suggest. `$placement` '' asks for none
	 * (the `default` placement, whose fragment is the one of a service without placements).
	 */
	public static function fragment( string $slug, int $limit, string $layout, string $heading, string $placement = '' ): string {
		$params = array(
			'limit'   => $limit,
			'layout'  => $layout,
			'heading' => $heading,
			'exclude' => $slug,
		);
		if ( '' !== $placement ) {
			$params['placement'] = $placement;
		}
		$query = http_build_query( $params );
		$path  = '/v1/articles/' . rawurlencode( $slug ) . '/related.html?' . $query;
		$key   = 'related_articles_' . md5( get_option( self::GENERATION_OPTION, '0' ) . Settings::service_url() . $path );
		$found = get_transient( $key );
		if ( is_array( $found ) ) {
			return (string) $found['html'];
		}
		[ $status, $body ] = Client::request( 'GET', $path, null, false, self::FRAGMENT_TIMEOUT );
		$ok                = 200 === $status && is_string( $body );
		$html              = $ok ? $body : '';
		set_transient( $key, array( 'html' => $html ), $ok ? self::FRAGMENT_TTL : self::FAILURE_TTL );
		return $html;
	}

	/** After a change is sent, cached fragments are stale: start a new generation of keys. */
	public static function forget_fragments(): void {
		update_option( self::GENERATION_OPTION, (string) microtime( true ), true );
	}
}
