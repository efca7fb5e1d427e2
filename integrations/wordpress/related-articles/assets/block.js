/* The "Related articles" block in the editor: a placeholder; the page renders the box. */
( function ( blocks, element, i18n ) {
	var el = element.createElement;
	var __ = i18n.__;
	blocks.registerBlockType( 'related-articles/box', {
		apiVersion: 2,
		title: __( 'Related articles', 'related-articles' ),
		description: __( 'A "You Might Also Like" box of articles related to this one.', 'related-articles' ),
		category: 'widgets',
		icon: 'list-view',
		attributes: {
			limit: { type: 'number' },
			layout: { type: 'string' },
			heading: { type: 'string' },
			placement: { type: 'string' },
		},
		edit: function () {
			return el(
				'div',
				{ className: 'related-articles-placeholder', style: { padding: '1em', border: '1px dashed #999' } },
				__( 'Related articles appear here on the published page.', 'related-articles' )
			);
		},
		save: function () {
			return null;
		},
	} );
} )( window.wp.blocks, window.wp.element, window.wp.i18n );
