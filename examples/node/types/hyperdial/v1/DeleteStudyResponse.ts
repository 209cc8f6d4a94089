// Original file: ../../protos/hyperdial/v1/tuning_service.proto


/**
 * Response of `DeleteStudy`.
 */
export interface DeleteStudyResponse {
}

/**
 * Response of `DeleteStudy`.
 */
export interface DeleteStudyResponse__Output {
}
