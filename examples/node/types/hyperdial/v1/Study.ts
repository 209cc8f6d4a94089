// Original file: ../../protos/hyperdial/v1/study.proto

import type { StudySpec as _hyperdial_v1_StudySpec, StudySpec__Output as _hyperdial_v1_StudySpec__Output } from '../../hyperdial/v1/StudySpec';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { Long } from '@grpc/proto-loader';

/**
 * A study: one tuning problem and every trial run for it.
 */
export interface Study {
  /**
   * Resource name of the study. Format: `studies/{study}`.
   */
  'name'?: (string);
  /**
   * The search space, objectives and algorithm. Fixed when the study is created.
   */
  'spec'?: (_hyperdial_v1_StudySpec | null);
  /**
   * When the study was created.
   */
  'create_time'?: (_google_protobuf_Timestamp | null);
  /**
   * Number of trials the study holds, in every state.
   */
  'trial_count'?: (number | string | Long);
}

/**
 * A study: one tuning problem and every trial run for it.
 */
export interface Study__Output {
  /**
   * Resource name of the study. Format: `studies/{study}`.
   */
  'name': (string);
  /**
   * The search space, objectives and algorithm. Fixed when the study is created.
   */
  'spec': (_hyperdial_v1_StudySpec__Output | null);
  /**
   * When the study was created.
   */
  'create_time': (_google_protobuf_Timestamp__Output | null);
  /**
   * Number of trials the study holds, in every state.
   */
  'trial_count': (number);
}
