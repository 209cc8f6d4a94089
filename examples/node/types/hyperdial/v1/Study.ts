// Original file: ../../protos/hyperdial/v1/study.proto

import type { StudySpec as _hyperdial_v1_StudySpec, StudySpec__Output as _hyperdial_v1_StudySpec__Output } from '../../hyperdial/v1/StudySpec';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { TrialStateCounts as _hyperdial_v1_TrialStateCounts, TrialStateCounts__Output as _hyperdial_v1_TrialStateCounts__Output } from '../../hyperdial/v1/TrialStateCounts';
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
  /**
   * The study's change counter: 0 for a study without trials, one more at every change of one
   * of its trials (each change gives that trial this new value as its `Trial.revision`).
   */
  'revision'?: (number | string | Long);
  /**
   * When a trial of the study last changed; the study's `create_time` while it has no trials.
   */
  'update_time'?: (_google_protobuf_Timestamp | null);
  /**
   * How many of its trials are in each state.
   */
  'state_counts'?: (_hyperdial_v1_TrialStateCounts | null);
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
  /**
   * The study's change counter: 0 for a study without trials, one more at every change of one
   * of its trials (each change gives that trial this new value as its `Trial.revision`).
   */
  'revision': (number);
  /**
   * When a trial of the study last changed; the study's `create_time` while it has no trials.
   */
  'update_time': (_google_protobuf_Timestamp__Output | null);
  /**
   * How many of its trials are in each state.
   */
  'state_counts': (_hyperdial_v1_TrialStateCounts__Output | null);
}
