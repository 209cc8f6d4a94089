// Original file: ../../protos/hyperdial/v1/trial.proto

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';
import type { Long } from '@grpc/proto-loader';

/**
 * Objective values measured for a trial.
 */
export interface Measurement {
  /**
   * Value of each objective, by objective name. Finite numbers only.
   */
  'values'?: ({[key: string]: number | string});
  /**
   * Step of an intermediate measurement: epochs, batches or any resource unit the study
   * counts in, 0 or more. 0 in a final measurement.
   */
  'step'?: (number | string | Long);
  /**
   * Training time until this measurement, as the worker measured it; optional.
   */
  'elapsed_duration'?: (_google_protobuf_Duration | null);
}

/**
 * Objective values measured for a trial.
 */
export interface Measurement__Output {
  /**
   * Value of each objective, by objective name. Finite numbers only.
   */
  'values': ({[key: string]: number});
  /**
   * Step of an intermediate measurement: epochs, batches or any resource unit the study
   * counts in, 0 or more. 0 in a final measurement.
   */
  'step': (number);
  /**
   * Training time until this measurement, as the worker measured it; optional.
   */
  'elapsed_duration': (_google_protobuf_Duration__Output | null);
}
