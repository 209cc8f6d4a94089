// Original file: ../../protos/hyperdial/v1/study.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Asynchronous successive halving (Optuna's `SuccessiveHalvingPruner`). Rung k sits at
 * `min_resource * reduction_factor^(min_early_stopping_rate + k)` steps. The first report at
 * or past a rung's step records the trial's value there; the trial continues if that value is
 * among the best `max(1, n / reduction_factor)` of the n values the rung holds, else it stops.
 */
export interface SuccessiveHalvingRule {
  /**
   * Steps of the first rung (with `min_early_stopping_rate` 0); 0 means 1.
   */
  'min_resource'?: (number | string | Long);
  /**
   * η, 2 to 100; 0 means 3.
   */
  'reduction_factor'?: (number);
  /**
   * s, 0 to 30: the first rung is at `min_resource * η^s` steps.
   */
  'min_early_stopping_rate'?: (number);
  /**
   * Steps of a full training: no rung at or past it. 0: no bound.
   */
  'max_resource'?: (number | string | Long);
}

/**
 * Asynchronous successive halving (Optuna's `SuccessiveHalvingPruner`). Rung k sits at
 * `min_resource * reduction_factor^(min_early_stopping_rate + k)` steps. The first report at
 * or past a rung's step records the trial's value there; the trial continues if that value is
 * among the best `max(1, n / reduction_factor)` of the n values the rung holds, else it stops.
 */
export interface SuccessiveHalvingRule__Output {
  /**
   * Steps of the first rung (with `min_early_stopping_rate` 0); 0 means 1.
   */
  'min_resource': (number);
  /**
   * η, 2 to 100; 0 means 3.
   */
  'reduction_factor': (number);
  /**
   * s, 0 to 30: the first rung is at `min_resource * η^s` steps.
   */
  'min_early_stopping_rate': (number);
  /**
   * Steps of a full training: no rung at or past it. 0: no bound.
   */
  'max_resource': (number);
}
