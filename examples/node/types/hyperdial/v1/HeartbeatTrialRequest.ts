// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * Request of `HeartbeatTrial`.
 */
export interface HeartbeatTrialRequest {
  /**
   * Name of the trial. Format: `studies/{study}/trials/{trial}`.
   */
  'name'?: (string);
}

/**
 * Request of `HeartbeatTrial`.
 */
export interface HeartbeatTrialRequest__Output {
  /**
   * Name of the trial. Format: `studies/{study}/trials/{trial}`.
   */
  'name': (string);
}
