// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * Why a trial failed.
 */
export interface TrialFailure {
  /**
   * A human-readable reason, at most 4096 characters.
   */
  'reason'?: (string);
}

/**
 * Why a trial failed.
 */
export interface TrialFailure__Output {
  /**
   * A human-readable reason, at most 4096 characters.
   */
  'reason': (string);
}
