// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Trial as _hyperdial_v1_Trial, Trial__Output as _hyperdial_v1_Trial__Output } from '../../hyperdial/v1/Trial';

/**
 * Response of `GetTrial`.
 */
export interface GetTrialResponse {
  /**
   * The trial.
   */
  'trial'?: (_hyperdial_v1_Trial | null);
}

/**
 * Response of `GetTrial`.
 */
export interface GetTrialResponse__Output {
  /**
   * The trial.
   */
  'trial': (_hyperdial_v1_Trial__Output | null);
}
