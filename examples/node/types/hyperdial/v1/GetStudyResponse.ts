// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Study as _hyperdial_v1_Study, Study__Output as _hyperdial_v1_Study__Output } from '../../hyperdial/v1/Study';

/**
 * Response of `GetStudy`.
 */
export interface GetStudyResponse {
  /**
   * The study.
   */
  'study'?: (_hyperdial_v1_Study | null);
}

/**
 * Response of `GetStudy`.
 */
export interface GetStudyResponse__Output {
  /**
   * The study.
   */
  'study': (_hyperdial_v1_Study__Output | null);
}
