<?php
/**
 * HTTP calls to the service, each with a short timeout.
 *
 * @package RelatedArticles
 */

declare(strict_types=1);

namespace RelatedArticles;

/** Calls to the related-article service. */
final class Client {
	/** Seconds an admin call may take before it is queued for later instead. */
	public const TIMEOUT = 3;

	/**
	 * Call the service; returns [status, decoded body or text, error words or null].
	 * A transport failure has status 0.
	 */
	public static function request( string $method, string $path, ?array $body = null, bool $admin = false, float $timeout = self::TIMEOUT ): array {
		$base = Settings::service_url();
		if ( '' === $base ) {
			return array( 0, null, __( 'no service URL is set', 'related-articles' ) );
		}
		$headers = array( 'Accept' => 'application/json' );
		if ( $admin ) {
			$headers['Authorization'] = 'Bearer ' . Settings::get( 'token' );
		}
		$args = array(
			'method'      => $method,
			'timeout'     => $timeout,
			'redirection' => 0,
			'headers'     => $headers,
		);
		if ( null !== $body ) {
			$args['headers']['Content-Type'] = 'application/json';
			$args['body']                    = wp_json_encode( $body );
		}
		$response = wp_remote_request( $base . $path, $args );
		if ( is_wp_error( $response ) ) {
			return array( 0, null, $response->get_error_message() );
		}
		$status  = (int) wp_remote_retrieve_response_code( $response );
		$text    = (string) wp_remote_retrieve_body( $response );
		$decoded = json_decode( $text, true );
		$error   = null;
		if ( $status >= 400 ) {
			$detail = is_array( $decoded ) ? ( $decoded['detail'] ?? $decoded['error'] ?? '' ) : '';
			$error  = trim( sprintf( 'HTTP %d %s', $status, is_string( $detail ) ? $detail : wp_json_encode( $detail ) ) );
		}
		return array( $status, null === $decoded ? $text : $decoded, $error );
	}
}
