// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * Request of `SuggestTrials`.
 */
export interface SuggestTrialsRequest {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'parent'?: (string);
  /**
   * How many trials to hand out: 1 to 100.
   */
  'count'?: (number);
  /**
   * Who asks (a worker or host id), recorded on the trials; at most 128 characters. A client
   * that asks again while it holds RUNNING trials of the study gets those trials back first
   * (so a restarted worker resumes its trial). Empty: every ask gets new trials.
   */
  'client_id'?: (string);
  /**
   * Makes the call idempotent: a retry with the same id (any string of 1 to 128 characters,
   * for example a UUID4) within the retention time returns the first answer and changes
   * nothing. Empty: no deduplication.
   */
  'request_id'?: (string);
}

/**
 * Request of `SuggestTrials`.
 */
export interface SuggestTrialsRequest__Output {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'parent': (string);
  /**
   * How many trials to hand out: 1 to 100.
   */
  'count': (number);
  /**
   * Who asks (a worker or host id), recorded on the trials; at most 128 characters. A client
   * that asks again while it holds RUNNING trials of the study gets those trials back first
   * (so a restarted worker resumes its trial). Empty: every ask gets new trials.
   */
  'client_id': (string);
  /**
   * Makes the call idempotent: a retry with the same id (any string of 1 to 128 characters,
   * for example a UUID4) within the retention time returns the first answer and changes
   * nothing. Empty: no deduplication.
   */
  'request_id': (string);
}
