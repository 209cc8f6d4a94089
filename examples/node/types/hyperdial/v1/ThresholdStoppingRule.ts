// Original file: ../../protos/hyperdial/v1/study.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Rules on a trial's own curve. At least one of `threshold` and `patience_steps` must be set.
 */
export interface ThresholdStoppingRule {
  /**
   * Stop a trial whose value is worse than this (above it to minimise, below to maximise) at a
   * step of at least `warmup_steps`. Unset: no threshold.
   */
  'threshold'?: (number | string);
  /**
   * Reports at steps below this never stop a trial.
   */
  'warmup_steps'?: (number | string | Long);
  /**
   * Stop a trial whose best value has not improved by more than `min_delta` over its last
   * `patience_steps` steps (Optuna's `PatientPruner`). 0: no patience rule.
   */
  'patience_steps'?: (number | string | Long);
  /**
   * Smallest improvement that counts for the patience rule; 0 or more.
   */
  'min_delta'?: (number | string);
  '_threshold'?: "threshold";
}

/**
 * Rules on a trial's own curve. At least one of `threshold` and `patience_steps` must be set.
 */
export interface ThresholdStoppingRule__Output {
  /**
   * Stop a trial whose value is worse than this (above it to minimise, below to maximise) at a
   * step of at least `warmup_steps`. Unset: no threshold.
   */
  'threshold'?: (number);
  /**
   * Reports at steps below this never stop a trial.
   */
  'warmup_steps': (number);
  /**
   * Stop a trial whose best value has not improved by more than `min_delta` over its last
   * `patience_steps` steps (Optuna's `PatientPruner`). 0: no patience rule.
   */
  'patience_steps': (number);
  /**
   * Smallest improvement that counts for the patience rule; 0 or more.
   */
  'min_delta': (number);
  '_threshold'?: "threshold";
}
