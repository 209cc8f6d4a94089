// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Trial as _hyperdial_v1_Trial, Trial__Output as _hyperdial_v1_Trial__Output } from '../../hyperdial/v1/Trial';

/**
 * Response of `ListOptimalTrials`.
 */
export interface ListOptimalTrialsResponse {
  /**
   * With one objective, the best completed trial (the lowest number among ties); with
   * several, the completed trials that no other completed trial dominates. Empty when no
   * trial has completed.
   */
  'trials'?: (_hyperdial_v1_Trial)[];
}

/**
 * Response of `ListOptimalTrials`.
 */
export interface ListOptimalTrialsResponse__Output {
  /**
   * With one objective, the best completed trial (the lowest number among ties); with
   * several, the completed trials that no other completed trial dominates. Empty when no
   * trial has completed.
   */
  'trials': (_hyperdial_v1_Trial__Output)[];
}
