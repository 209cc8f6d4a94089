// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * Request of `ListStudies`.
 */
export interface ListStudiesRequest {
  /**
   * Most studies to return; 0 means the default of 100; at most 1000.
   */
  'page_size'?: (number);
  /**
   * `next_page_token` of the previous page; empty for the first page.
   */
  'page_token'?: (string);
}

/**
 * Request of `ListStudies`.
 */
export interface ListStudiesRequest__Output {
  /**
   * Most studies to return; 0 means the default of 100; at most 1000.
   */
  'page_size': (number);
  /**
   * `next_page_token` of the previous page; empty for the first page.
   */
  'page_token': (string);
}
