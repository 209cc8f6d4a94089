// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Study as _hyperdial_v1_Study, Study__Output as _hyperdial_v1_Study__Output } from '../../hyperdial/v1/Study';

/**
 * Response of `ListStudies`.
 */
export interface ListStudiesResponse {
  /**
   * The studies of this page, in order of their id.
   */
  'studies'?: (_hyperdial_v1_Study)[];
  /**
   * Token of the next page; empty when this is the last page.
   */
  'next_page_token'?: (string);
}

/**
 * Response of `ListStudies`.
 */
export interface ListStudiesResponse__Output {
  /**
   * The studies of this page, in order of their id.
   */
  'studies': (_hyperdial_v1_Study__Output)[];
  /**
   * Token of the next page; empty when this is the last page.
   */
  'next_page_token': (string);
}
