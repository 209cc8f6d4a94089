// Original file: ../../protos/hyperdial/v1/trial.proto

import type { Long } from '@grpc/proto-loader';

/**
 * What the study's early-stopping policy decided at a report.
 */
export interface EarlyStoppingDecision {
  /**
   * Whether the trial should stop. When true, the trial is already `TRIAL_STATE_STOPPED`: the
   * worker stops training and need not call `CompleteTrial`.
   */
  'should_stop'?: (boolean);
  /**
   * The rule that decided: `median`, `percentile`, `successive_halving`, `hyperband`,
   * `threshold`, `patience`, or `worker` for a trial stopped by `CompleteTrial`; empty while
   * the trial continues.
   */
  'rule'?: (string);
  /**
   * Step of the report the decision was taken at.
   */
  'step'?: (number | string | Long);
  /**
   * For successive halving and Hyperband: the rung the decision was taken at (0, 1, ...).
   */
  'rung'?: (number);
  /**
   * What the rule compared, for people: for example "best value 0.41 is worse than the median
   * 0.32 of 12 trials at step 5".
   */
  'message'?: (string);
  /**
   * How many values the rule compared at this decision: the other trials' at the step for the
   * percentile rules, the rung's (the trial's own included) for successive halving and
   * Hyperband; 0 for rules on the trial's own curve and while nothing was compared.
   */
  'compared_trials'?: (number);
  '_rung'?: "rung";
}

/**
 * What the study's early-stopping policy decided at a report.
 */
export interface EarlyStoppingDecision__Output {
  /**
   * Whether the trial should stop. When true, the trial is already `TRIAL_STATE_STOPPED`: the
   * worker stops training and need not call `CompleteTrial`.
   */
  'should_stop': (boolean);
  /**
   * The rule that decided: `median`, `percentile`, `successive_halving`, `hyperband`,
   * `threshold`, `patience`, or `worker` for a trial stopped by `CompleteTrial`; empty while
   * the trial continues.
   */
  'rule': (string);
  /**
   * Step of the report the decision was taken at.
   */
  'step': (number);
  /**
   * For successive halving and Hyperband: the rung the decision was taken at (0, 1, ...).
   */
  'rung'?: (number);
  /**
   * What the rule compared, for people: for example "best value 0.41 is worse than the median
   * 0.32 of 12 trials at step 5".
   */
  'message': (string);
  /**
   * How many values the rule compared at this decision: the other trials' at the step for the
   * percentile rules, the rung's (the trial's own included) for successive halving and
   * Hyperband; 0 for rules on the trial's own curve and while nothing was compared.
   */
  'compared_trials': (number);
  '_rung'?: "rung";
}
