// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * Request of `GetStudy`.
 */
export interface GetStudyRequest {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'name'?: (string);
}

/**
 * Request of `GetStudy`.
 */
export interface GetStudyRequest__Output {
  /**
   * Name of the study. Format: `studies/{study}`.
   */
  'name': (string);
}
