// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Trial as _hyperdial_v1_Trial, Trial__Output as _hyperdial_v1_Trial__Output } from '../../hyperdial/v1/Trial';

/**
 * Response of `CompleteTrial`.
 */
export interface CompleteTrialResponse {
  /**
   * The trial as stored.
   */
  'trial'?: (_hyperdial_v1_Trial | null);
}

/**
 * Response of `CompleteTrial`.
 */
export interface CompleteTrialResponse__Output {
  /**
   * The trial as stored.
   */
  'trial': (_hyperdial_v1_Trial__Output | null);
}
