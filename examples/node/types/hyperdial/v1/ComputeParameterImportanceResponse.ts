// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { ParameterImportance as _hyperdial_v1_ParameterImportance, ParameterImportance__Output as _hyperdial_v1_ParameterImportance__Output } from '../../hyperdial/v1/ParameterImportance';
import type { Long } from '@grpc/proto-loader';

/**
 * Response of `ComputeParameterImportance`.
 */
export interface ComputeParameterImportanceResponse {
  /**
   * Every parameter of the study, most important first (ties in order of the spec). The
   * importances are 0 or more and sum to 1, unless every one is 0 (the objective did not
   * vary, or no parameter explains it).
   */
  'importances'?: (_hyperdial_v1_ParameterImportance)[];
  /**
   * How many completed trials the importances were computed from.
   */
  'trial_count'?: (number | string | Long);
  /**
   * The method: `ped-anova`.
   */
  'method'?: (string);
}

/**
 * Response of `ComputeParameterImportance`.
 */
export interface ComputeParameterImportanceResponse__Output {
  /**
   * Every parameter of the study, most important first (ties in order of the spec). The
   * importances are 0 or more and sum to 1, unless every one is 0 (the objective did not
   * vary, or no parameter explains it).
   */
  'importances': (_hyperdial_v1_ParameterImportance__Output)[];
  /**
   * How many completed trials the importances were computed from.
   */
  'trial_count': (number);
  /**
   * The method: `ped-anova`.
   */
  'method': (string);
}
