// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { StudySpec as _hyperdial_v1_StudySpec, StudySpec__Output as _hyperdial_v1_StudySpec__Output } from '../../hyperdial/v1/StudySpec';

/**
 * Request of `CreateStudy`.
 */
export interface CreateStudyRequest {
  /**
   * Id of the new study, the `{study}` of its name: 1 to 128 characters from
   * `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
   */
  'study_id'?: (string);
  /**
   * What to tune and how.
   */
  'spec'?: (_hyperdial_v1_StudySpec | null);
  /**
   * Makes the call idempotent: a retry with the same id (any string of 1 to 128 characters,
   * for example a UUID4) within the retention time returns the first answer and changes
   * nothing. Empty: no deduplication.
   */
  'request_id'?: (string);
}

/**
 * Request of `CreateStudy`.
 */
export interface CreateStudyRequest__Output {
  /**
   * Id of the new study, the `{study}` of its name: 1 to 128 characters from
   * `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
   */
  'study_id': (string);
  /**
   * What to tune and how.
   */
  'spec': (_hyperdial_v1_StudySpec__Output | null);
  /**
   * Makes the call idempotent: a retry with the same id (any string of 1 to 128 characters,
   * for example a UUID4) within the retention time returns the first answer and changes
   * nothing. Empty: no deduplication.
   */
  'request_id': (string);
}
