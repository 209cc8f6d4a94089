// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Trial as _hyperdial_v1_Trial, Trial__Output as _hyperdial_v1_Trial__Output } from '../../hyperdial/v1/Trial';

/**
 * Response of `HeartbeatTrial`.
 */
export interface HeartbeatTrialResponse {
  /**
   * The trial, with its new `lease_expire_time`.
   */
  'trial'?: (_hyperdial_v1_Trial | null);
}

/**
 * Response of `HeartbeatTrial`.
 */
export interface HeartbeatTrialResponse__Output {
  /**
   * The trial, with its new `lease_expire_time`.
   */
  'trial': (_hyperdial_v1_Trial__Output | null);
}
