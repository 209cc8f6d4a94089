// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { OptimalityBasis as _hyperdial_v1_OptimalityBasis, OptimalityBasis__Output as _hyperdial_v1_OptimalityBasis__Output } from '../../hyperdial/v1/OptimalityBasis';

/**
 * Request of `ListOptimalTrials`.
 */
export interface ListOptimalTrialsRequest {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'parent'?: (string);
  /**
   * What "best" is judged by; unspecified: `OPTIMALITY_BASIS_OBSERVED`.
   */
  'basis'?: (_hyperdial_v1_OptimalityBasis);
}

/**
 * Request of `ListOptimalTrials`.
 */
export interface ListOptimalTrialsRequest__Output {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'parent': (string);
  /**
   * What "best" is judged by; unspecified: `OPTIMALITY_BASIS_OBSERVED`.
   */
  'basis': (_hyperdial_v1_OptimalityBasis__Output);
}
