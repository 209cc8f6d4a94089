// Original file: ../../protos/hyperdial/v1/study.proto

import type { MedianStoppingRule as _hyperdial_v1_MedianStoppingRule, MedianStoppingRule__Output as _hyperdial_v1_MedianStoppingRule__Output } from '../../hyperdial/v1/MedianStoppingRule';
import type { PercentileStoppingRule as _hyperdial_v1_PercentileStoppingRule, PercentileStoppingRule__Output as _hyperdial_v1_PercentileStoppingRule__Output } from '../../hyperdial/v1/PercentileStoppingRule';
import type { SuccessiveHalvingRule as _hyperdial_v1_SuccessiveHalvingRule, SuccessiveHalvingRule__Output as _hyperdial_v1_SuccessiveHalvingRule__Output } from '../../hyperdial/v1/SuccessiveHalvingRule';
import type { HyperbandRule as _hyperdial_v1_HyperbandRule, HyperbandRule__Output as _hyperdial_v1_HyperbandRule__Output } from '../../hyperdial/v1/HyperbandRule';
import type { ThresholdStoppingRule as _hyperdial_v1_ThresholdStoppingRule, ThresholdStoppingRule__Output as _hyperdial_v1_ThresholdStoppingRule__Output } from '../../hyperdial/v1/ThresholdStoppingRule';

/**
 * When running trials stop early: one rule, the objective it watches, and how much of each
 * trial's learning curve is kept. Every replica takes the same decision for the same history.
 */
export interface EarlyStoppingPolicy {
  /**
   * Stop a trial whose best value so far is worse than the median of the values the other
   * trials reported at the same step.
   */
  'median'?: (_hyperdial_v1_MedianStoppingRule | null);
  /**
   * The median rule at another percentile.
   */
  'percentile'?: (_hyperdial_v1_PercentileStoppingRule | null);
  /**
   * Asynchronous successive halving (ASHA): at each rung, continue only the best 1/η.
   */
  'successive_halving'?: (_hyperdial_v1_SuccessiveHalvingRule | null);
  /**
   * Hyperband: several successive-halving brackets, each trial in one of them.
   */
  'hyperband'?: (_hyperdial_v1_HyperbandRule | null);
  /**
   * A fixed threshold and/or a patience rule on the trial's own curve.
   */
  'threshold'?: (_hyperdial_v1_ThresholdStoppingRule | null);
  /**
   * Name of the objective the rule watches; empty: the study's first objective. Every report
   * must carry a value for it; values of other objectives are optional.
   */
  'objective'?: (string);
  /**
   * Most intermediate measurements kept per trial, 1 to 10000; 0 means 100. Past it, older
   * measurements are thinned; the last one and those at a step where the rule decided are
   * always kept.
   */
  'max_measurements_per_trial'?: (number);
  /**
   * Whether a stopped trial can be optimal (`ListOptimalTrials`), ranked by its last
   * measurement. False (the default): only completed trials are.
   */
  'rank_stopped_trials'?: (boolean);
  /**
   * The rule deciding at each report. Exactly one must be set.
   */
  'rule'?: "median"|"percentile"|"successive_halving"|"hyperband"|"threshold";
}

/**
 * When running trials stop early: one rule, the objective it watches, and how much of each
 * trial's learning curve is kept. Every replica takes the same decision for the same history.
 */
export interface EarlyStoppingPolicy__Output {
  /**
   * Stop a trial whose best value so far is worse than the median of the values the other
   * trials reported at the same step.
   */
  'median'?: (_hyperdial_v1_MedianStoppingRule__Output | null);
  /**
   * The median rule at another percentile.
   */
  'percentile'?: (_hyperdial_v1_PercentileStoppingRule__Output | null);
  /**
   * Asynchronous successive halving (ASHA): at each rung, continue only the best 1/η.
   */
  'successive_halving'?: (_hyperdial_v1_SuccessiveHalvingRule__Output | null);
  /**
   * Hyperband: several successive-halving brackets, each trial in one of them.
   */
  'hyperband'?: (_hyperdial_v1_HyperbandRule__Output | null);
  /**
   * A fixed threshold and/or a patience rule on the trial's own curve.
   */
  'threshold'?: (_hyperdial_v1_ThresholdStoppingRule__Output | null);
  /**
   * Name of the objective the rule watches; empty: the study's first objective. Every report
   * must carry a value for it; values of other objectives are optional.
   */
  'objective': (string);
  /**
   * Most intermediate measurements kept per trial, 1 to 10000; 0 means 100. Past it, older
   * measurements are thinned; the last one and those at a step where the rule decided are
   * always kept.
   */
  'max_measurements_per_trial': (number);
  /**
   * Whether a stopped trial can be optimal (`ListOptimalTrials`), ranked by its last
   * measurement. False (the default): only completed trials are.
   */
  'rank_stopped_trials': (boolean);
  /**
   * The rule deciding at each report. Exactly one must be set.
   */
  'rule'?: "median"|"percentile"|"successive_halving"|"hyperband"|"threshold";
}
