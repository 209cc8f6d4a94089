// Original file: ../../protos/hyperdial/v1/study.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Hyperband (Optuna's `HyperbandPruner`): brackets 0 to B-1, B = floor(log_η(max_resource /
 * min_resource)) + 1; bracket b runs successive halving with `min_early_stopping_rate` b.
 * Each trial's bracket follows from its number, in proportion to each bracket's budget, and
 * is shown as `Trial.bracket`.
 */
export interface HyperbandRule {
  /**
   * Steps of the first rung of bracket 0; 0 means 1.
   */
  'min_resource'?: (number | string | Long);
  /**
   * Steps of a full training; required, at least `min_resource * reduction_factor`.
   */
  'max_resource'?: (number | string | Long);
  /**
   * η, 2 to 100; 0 means 3.
   */
  'reduction_factor'?: (number);
}

/**
 * Hyperband (Optuna's `HyperbandPruner`): brackets 0 to B-1, B = floor(log_η(max_resource /
 * min_resource)) + 1; bracket b runs successive halving with `min_early_stopping_rate` b.
 * Each trial's bracket follows from its number, in proportion to each bracket's budget, and
 * is shown as `Trial.bracket`.
 */
export interface HyperbandRule__Output {
  /**
   * Steps of the first rung of bracket 0; 0 means 1.
   */
  'min_resource': (number);
  /**
   * Steps of a full training; required, at least `min_resource * reduction_factor`.
   */
  'max_resource': (number);
  /**
   * η, 2 to 100; 0 means 3.
   */
  'reduction_factor': (number);
}
