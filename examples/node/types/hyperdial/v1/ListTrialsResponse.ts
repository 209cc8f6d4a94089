// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Trial as _hyperdial_v1_Trial, Trial__Output as _hyperdial_v1_Trial__Output } from '../../hyperdial/v1/Trial';

/**
 * Response of `ListTrials`.
 */
export interface ListTrialsResponse {
  /**
   * The trials of this page, in order of their number.
   */
  'trials'?: (_hyperdial_v1_Trial)[];
  /**
   * Token of the next page; empty when this is the last page.
   */
  'next_page_token'?: (string);
}

/**
 * Response of `ListTrials`.
 */
export interface ListTrialsResponse__Output {
  /**
   * The trials of this page, in order of their number.
   */
  'trials': (_hyperdial_v1_Trial__Output)[];
  /**
   * Token of the next page; empty when this is the last page.
   */
  'next_page_token': (string);
}
