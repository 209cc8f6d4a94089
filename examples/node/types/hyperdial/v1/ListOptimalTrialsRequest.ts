// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * Request of `ListOptimalTrials`.
 */
export interface ListOptimalTrialsRequest {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'parent'?: (string);
}

/**
 * Request of `ListOptimalTrials`.
 */
export interface ListOptimalTrialsRequest__Output {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'parent': (string);
}
