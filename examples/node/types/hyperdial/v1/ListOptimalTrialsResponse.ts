// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Trial as _hyperdial_v1_Trial, Trial__Output as _hyperdial_v1_Trial__Output } from '../../hyperdial/v1/Trial';
import type { TrialPrediction as _hyperdial_v1_TrialPrediction, TrialPrediction__Output as _hyperdial_v1_TrialPrediction__Output } from '../../hyperdial/v1/TrialPrediction';

/**
 * Response of `ListOptimalTrials`.
 */
export interface ListOptimalTrialsResponse {
  /**
   * With one objective, the best completed trial (the lowest number among ties); with
   * several, the completed trials that no other completed trial dominates. Empty when no
   * trial has completed. Under `OPTIMALITY_BASIS_MODEL`, best and dominance are judged by the
   * predicted values; among completed trials with the same parameters (repeated
   * measurements), only the lowest number is listed.
   */
  'trials'?: (_hyperdial_v1_Trial)[];
  /**
   * Under `OPTIMALITY_BASIS_MODEL`: the model's prediction for each trial of `trials`, in the
   * same order. Empty under `OPTIMALITY_BASIS_OBSERVED`.
   */
  'predictions'?: (_hyperdial_v1_TrialPrediction)[];
}

/**
 * Response of `ListOptimalTrials`.
 */
export interface ListOptimalTrialsResponse__Output {
  /**
   * With one objective, the best completed trial (the lowest number among ties); with
   * several, the completed trials that no other completed trial dominates. Empty when no
   * trial has completed. Under `OPTIMALITY_BASIS_MODEL`, best and dominance are judged by the
   * predicted values; among completed trials with the same parameters (repeated
   * measurements), only the lowest number is listed.
   */
  'trials': (_hyperdial_v1_Trial__Output)[];
  /**
   * Under `OPTIMALITY_BASIS_MODEL`: the model's prediction for each trial of `trials`, in the
   * same order. Empty under `OPTIMALITY_BASIS_OBSERVED`.
   */
  'predictions': (_hyperdial_v1_TrialPrediction__Output)[];
}
