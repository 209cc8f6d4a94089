// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * Why a trial's parameters cannot give a result.
 */
export interface TrialInfeasibility {
  /**
   * A human-readable reason, at most 4096 characters; may be empty.
   */
  'reason'?: (string);
}

/**
 * Why a trial's parameters cannot give a result.
 */
export interface TrialInfeasibility__Output {
  /**
   * A human-readable reason, at most 4096 characters; may be empty.
   */
  'reason': (string);
}
