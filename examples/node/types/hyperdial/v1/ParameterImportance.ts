// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Long } from '@grpc/proto-loader';

/**
 * How much one parameter matters to an objective.
 */
export interface ParameterImportance {
  /**
   * Name of the parameter.
   */
  'parameter'?: (string);
  /**
   * Its share of the importance, from 0 to 1.
   */
  'importance'?: (number | string);
  /**
   * How many of the trials used had this parameter active (conditional parameters are
   * inactive in some).
   */
  'active_trials'?: (number | string | Long);
}

/**
 * How much one parameter matters to an objective.
 */
export interface ParameterImportance__Output {
  /**
   * Name of the parameter.
   */
  'parameter': (string);
  /**
   * Its share of the importance, from 0 to 1.
   */
  'importance': (number);
  /**
   * How many of the trials used had this parameter active (conditional parameters are
   * inactive in some).
   */
  'active_trials': (number);
}
