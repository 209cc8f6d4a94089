// Original file: ../../protos/hyperdial/v1/study.proto

import type { Long } from '@grpc/proto-loader';

/**
 * The median rule (Optuna's `MedianPruner`, Katib's median stopping): at a report of step s,
 * stop the trial if its best value so far is worse than the median of the values the other
 * trials reported at step s.
 */
export interface MedianStoppingRule {
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
 * The median rule (Optuna's `MedianPruner`, Katib's median stopping): at a report of step s,
 * stop the trial if its best value so far is worse than the median of the values the other
 * trials reported at step s.
 */
export interface MedianStoppingRule__Output {
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
