// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * Why a worker stopped a trial early.
 */
export interface TrialStop {
  /**
   * A human-readable reason, at most 4096 characters; may be empty.
   */
  'reason'?: (string);
}

/**
 * Why a worker stopped a trial early.
 */
export interface TrialStop__Output {
  /**
   * A human-readable reason, at most 4096 characters; may be empty.
   */
  'reason': (string);
}
