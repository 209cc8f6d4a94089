// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * Request of `CheckTrialEarlyStopping`.
 */
export interface CheckTrialEarlyStoppingRequest {
  /**
   * Name of the trial. Format: `studies/{study}/trials/{trial}`.
   */
  'name'?: (string);
}

/**
 * Request of `CheckTrialEarlyStopping`.
 */
export interface CheckTrialEarlyStoppingRequest__Output {
  /**
   * Name of the trial. Format: `studies/{study}/trials/{trial}`.
   */
  'name': (string);
}
