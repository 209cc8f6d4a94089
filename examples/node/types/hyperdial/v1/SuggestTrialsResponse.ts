// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Trial as _hyperdial_v1_Trial, Trial__Output as _hyperdial_v1_Trial__Output } from '../../hyperdial/v1/Trial';

/**
 * Response of `SuggestTrials`.
 */
export interface SuggestTrialsResponse {
  /**
   * The new RUNNING trials, at least one.
   */
  'trials'?: (_hyperdial_v1_Trial)[];
}

/**
 * Response of `SuggestTrials`.
 */
export interface SuggestTrialsResponse__Output {
  /**
   * The new RUNNING trials, at least one.
   */
  'trials': (_hyperdial_v1_Trial__Output)[];
}
