// Original file: ../../protos/hyperdial/v1/study.proto

import type { Goal as _hyperdial_v1_Goal, Goal__Output as _hyperdial_v1_Goal__Output } from '../../hyperdial/v1/Goal';

/**
 * One objective of the study.
 */
export interface ObjectiveSpec {
  /**
   * Name of the objective: 1 to 128 printable characters, unique in the study.
   */
  'name'?: (string);
  /**
   * Whether lower or higher values are better. Required.
   */
  'goal'?: (_hyperdial_v1_Goal);
}

/**
 * One objective of the study.
 */
export interface ObjectiveSpec__Output {
  /**
   * Name of the objective: 1 to 128 printable characters, unique in the study.
   */
  'name': (string);
  /**
   * Whether lower or higher values are better. Required.
   */
  'goal': (_hyperdial_v1_Goal__Output);
}
