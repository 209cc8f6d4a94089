// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * Request of `DeleteStudy`.
 */
export interface DeleteStudyRequest {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'name'?: (string);
  /**
   * Makes the call idempotent: a retry with the same id (any string of 1 to 128 characters,
   * for example a UUID4) within the retention time returns the first answer and changes
   * nothing. Empty: no deduplication.
   */
  'request_id'?: (string);
}

/**
 * Request of `DeleteStudy`.
 */
export interface DeleteStudyRequest__Output {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'name': (string);
  /**
   * Makes the call idempotent: a retry with the same id (any string of 1 to 128 characters,
   * for example a UUID4) within the retention time returns the first answer and changes
   * nothing. Empty: no deduplication.
   */
  'request_id': (string);
}
