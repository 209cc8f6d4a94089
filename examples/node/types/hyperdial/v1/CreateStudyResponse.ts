// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type { Study as _hyperdial_v1_Study, Study__Output as _hyperdial_v1_Study__Output } from '../../hyperdial/v1/Study';

/**
 * Response of `CreateStudy`.
 */
export interface CreateStudyResponse {
  /**
   * The study as stored, with the algorithm and seed the server resolved.
   */
  'study'?: (_hyperdial_v1_Study | null);
}

/**
 * Response of `CreateStudy`.
 */
export interface CreateStudyResponse__Output {
  /**
   * The study as stored, with the algorithm and seed the server resolved.
   */
  'study': (_hyperdial_v1_Study__Output | null);
}
