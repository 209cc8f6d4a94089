// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * Request of `ComputeParameterImportance`.
 */
export interface ComputeParameterImportanceRequest {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'parent'?: (string);
  /**
   * Name of the objective to explain; empty means the study's first objective.
   */
  'objective'?: (string);
}

/**
 * Request of `ComputeParameterImportance`.
 */
export interface ComputeParameterImportanceRequest__Output {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'parent': (string);
  /**
   * Name of the objective to explain; empty means the study's first objective.
   */
  'objective': (string);
}
