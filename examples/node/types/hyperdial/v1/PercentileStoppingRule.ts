// Original file: ../../protos/hyperdial/v1/study.proto

import type { Long } from '@grpc/proto-loader';

/**
 * The percentile rule (Optuna's `PercentilePruner`): the median rule at `percentile`.
 */
export interface PercentileStoppingRule {
  /**
   * Percentile, strictly between 0 and 100, of the other trials' values at the step that a
   * trial's best value must not be worse than. 50 is the median rule; lower stops more.
   */
  'percentile'?: (number | string);
  /**
   * Reports at steps below this never stop a trial.
   */
  'warmup_steps'?: (number | string | Long);
  /**
   * Fewest other trials with a value at the step for the rule to decide; 0 means 1.
   */
  'min_trials'?: (number);
  /**
   * The rule decides only at steps `warmup_steps + k * interval_steps`; 0 means 1.
   */
  'interval_steps'?: (number | string | Long);
}

/**
 * The percentile rule (Optuna's `PercentilePruner`): the median rule at `percentile`.
 */
export interface PercentileStoppingRule__Output {
  /**
   * Percentile, strictly between 0 and 100, of the other trials' values at the step that a
   * trial's best value must not be worse than. 50 is the median rule; lower stops more.
   */
  'percentile': (number);
  /**
   * Reports at steps below this never stop a trial.
   */
  'warmup_steps': (number);
  /**
   * Fewest other trials with a value at the step for the rule to decide; 0 means 1.
   */
  'min_trials': (number);
  /**
   * The rule decides only at steps `warmup_steps + k * interval_steps`; 0 means 1.
   */
  'interval_steps': (number);
}
