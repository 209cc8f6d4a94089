// Original file: ../../protos/hyperdial/v1/study.proto

import type { ParameterSpec as _hyperdial_v1_ParameterSpec, ParameterSpec__Output as _hyperdial_v1_ParameterSpec__Output } from '../../hyperdial/v1/ParameterSpec';
import type { ObjectiveSpec as _hyperdial_v1_ObjectiveSpec, ObjectiveSpec__Output as _hyperdial_v1_ObjectiveSpec__Output } from '../../hyperdial/v1/ObjectiveSpec';
import type { Algorithm as _hyperdial_v1_Algorithm, Algorithm__Output as _hyperdial_v1_Algorithm__Output } from '../../hyperdial/v1/Algorithm';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';
import type { EarlyStoppingPolicy as _hyperdial_v1_EarlyStoppingPolicy, EarlyStoppingPolicy__Output as _hyperdial_v1_EarlyStoppingPolicy__Output } from '../../hyperdial/v1/EarlyStoppingPolicy';
import type { OutcomeConstraint as _hyperdial_v1_OutcomeConstraint, OutcomeConstraint__Output as _hyperdial_v1_OutcomeConstraint__Output } from '../../hyperdial/v1/OutcomeConstraint';
import type { Long } from '@grpc/proto-loader';

/**
 * What to tune and how.
 */
export interface StudySpec {
  /**
   * The parameters to tune. At least one; names are unique. A parameter with a `condition`
   * is active only when its parent takes one of the listed values.
   */
  'parameters'?: (_hyperdial_v1_ParameterSpec)[];
  /**
   * The objectives to optimise. At least one; names are unique.
   */
  'objectives'?: (_hyperdial_v1_ObjectiveSpec)[];
  /**
   * The sampling algorithm. `ALGORITHM_UNSPECIFIED` lets the server choose; the study then
   * stores the algorithm chosen at creation, so a later change of default never changes it.
   */
  'algorithm'?: (_hyperdial_v1_Algorithm);
  /**
   * Seed of every random choice the algorithm makes. When absent the server draws one and
   * stores it, so a study is always reproducible after the fact.
   */
  'seed'?: (number | string | Long);
  /**
   * Most trials `SuggestTrials` hands out over the study's life (sampled and enqueued alike).
   * Absent or 0 means no limit. Trials added as finished by `CreateTrial` do not count.
   */
  'max_trials'?: (number);
  /**
   * For `ALGORITHM_GRID`: how many evenly spaced values each float parameter takes (evenly
   * in log space for `SCALE_LOG`). Required, at least 2, when the grid has a float parameter.
   */
  'grid_resolution'?: (number);
  /**
   * For `ALGORITHM_BAYESIAN`: how many trials are sampled quasi-randomly (Sobol) before the
   * model is used, 1 to 10000; in a space of 10 parameters or more the first of them is the
   * centre of the space (docs/algorithms.md). 0 means the server default (twice the number of parameters,
   * at least 5 and at most 10; see docs/algorithms.md); a Bayesian study returns the value
   * its sampler uses, the default included. Other algorithms ignore it and return it as given.
   */
  'initial_trials'?: (number);
  /**
   * How long a RUNNING trial may go without a heartbeat (`HeartbeatTrial`) or a result before
   * its lease expires and the trial fails with reason "lease expired". Absent or zero means the
   * server default (see docs/protocol.md).
   */
  'lease_timeout'?: (_google_protobuf_Duration | null);
  /**
   * When running trials stop early, from the intermediate measurements they report
   * (`AddTrialMeasurement`). Unset: never; reports are still recorded, and every answer says
   * to continue.
   */
  'early_stopping'?: (_hyperdial_v1_EarlyStoppingPolicy | null);
  /**
   * Declares that the objectives are deterministic: the same parameters always give the same
   * values. The model of `ALGORITHM_BAYESIAN` then fits no noise and interpolates the results;
   * by default it fits the noise level from the results (see docs/algorithms.md). The model
   * basis of `ListOptimalTrials` follows the same declaration.
   */
  'deterministic_objective'?: (boolean);
  /**
   * Outcome constraints: metrics every final measurement reports beside the objectives, each
   * with bounds it must hold. A completed trial is feasible when all of them hold; only
   * feasible trials are optimal (`ListOptimalTrials`), and the Bayesian model learns where
   * they hold. At most 8; names are unique and differ from the objectives' names. An
   * Optuna-style `constraints_func` that returns values `c_i` (satisfied when `c_i <= 0`) maps
   * to constraints named after each value with `upper_bound: 0`.
   */
  'constraints'?: (_hyperdial_v1_OutcomeConstraint)[];
  '_seed'?: "seed";
}

/**
 * What to tune and how.
 */
export interface StudySpec__Output {
  /**
   * The parameters to tune. At least one; names are unique. A parameter with a `condition`
   * is active only when its parent takes one of the listed values.
   */
  'parameters': (_hyperdial_v1_ParameterSpec__Output)[];
  /**
   * The objectives to optimise. At least one; names are unique.
   */
  'objectives': (_hyperdial_v1_ObjectiveSpec__Output)[];
  /**
   * The sampling algorithm. `ALGORITHM_UNSPECIFIED` lets the server choose; the study then
   * stores the algorithm chosen at creation, so a later change of default never changes it.
   */
  'algorithm': (_hyperdial_v1_Algorithm__Output);
  /**
   * Seed of every random choice the algorithm makes. When absent the server draws one and
   * stores it, so a study is always reproducible after the fact.
   */
  'seed'?: (number);
  /**
   * Most trials `SuggestTrials` hands out over the study's life (sampled and enqueued alike).
   * Absent or 0 means no limit. Trials added as finished by `CreateTrial` do not count.
   */
  'max_trials': (number);
  /**
   * For `ALGORITHM_GRID`: how many evenly spaced values each float parameter takes (evenly
   * in log space for `SCALE_LOG`). Required, at least 2, when the grid has a float parameter.
   */
  'grid_resolution': (number);
  /**
   * For `ALGORITHM_BAYESIAN`: how many trials are sampled quasi-randomly (Sobol) before the
   * model is used, 1 to 10000; in a space of 10 parameters or more the first of them is the
   * centre of the space (docs/algorithms.md). 0 means the server default (twice the number of parameters,
   * at least 5 and at most 10; see docs/algorithms.md); a Bayesian study returns the value
   * its sampler uses, the default included. Other algorithms ignore it and return it as given.
   */
  'initial_trials': (number);
  /**
   * How long a RUNNING trial may go without a heartbeat (`HeartbeatTrial`) or a result before
   * its lease expires and the trial fails with reason "lease expired". Absent or zero means the
   * server default (see docs/protocol.md).
   */
  'lease_timeout': (_google_protobuf_Duration__Output | null);
  /**
   * When running trials stop early, from the intermediate measurements they report
   * (`AddTrialMeasurement`). Unset: never; reports are still recorded, and every answer says
   * to continue.
   */
  'early_stopping': (_hyperdial_v1_EarlyStoppingPolicy__Output | null);
  /**
   * Declares that the objectives are deterministic: the same parameters always give the same
   * values. The model of `ALGORITHM_BAYESIAN` then fits no noise and interpolates the results;
   * by default it fits the noise level from the results (see docs/algorithms.md). The model
   * basis of `ListOptimalTrials` follows the same declaration.
   */
  'deterministic_objective': (boolean);
  /**
   * Outcome constraints: metrics every final measurement reports beside the objectives, each
   * with bounds it must hold. A completed trial is feasible when all of them hold; only
   * feasible trials are optimal (`ListOptimalTrials`), and the Bayesian model learns where
   * they hold. At most 8; names are unique and differ from the objectives' names. An
   * Optuna-style `constraints_func` that returns values `c_i` (satisfied when `c_i <= 0`) maps
   * to constraints named after each value with `upper_bound: 0`.
   */
  'constraints': (_hyperdial_v1_OutcomeConstraint__Output)[];
  '_seed'?: "seed";
}
