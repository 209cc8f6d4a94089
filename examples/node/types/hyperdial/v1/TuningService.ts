// Original file: ../../protos/hyperdial/v1/tuning_service.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AddTrialMeasurementRequest as _hyperdial_v1_AddTrialMeasurementRequest, AddTrialMeasurementRequest__Output as _hyperdial_v1_AddTrialMeasurementRequest__Output } from '../../hyperdial/v1/AddTrialMeasurementRequest';
import type { AddTrialMeasurementResponse as _hyperdial_v1_AddTrialMeasurementResponse, AddTrialMeasurementResponse__Output as _hyperdial_v1_AddTrialMeasurementResponse__Output } from '../../hyperdial/v1/AddTrialMeasurementResponse';
import type { CheckTrialEarlyStoppingRequest as _hyperdial_v1_CheckTrialEarlyStoppingRequest, CheckTrialEarlyStoppingRequest__Output as _hyperdial_v1_CheckTrialEarlyStoppingRequest__Output } from '../../hyperdial/v1/CheckTrialEarlyStoppingRequest';
import type { CheckTrialEarlyStoppingResponse as _hyperdial_v1_CheckTrialEarlyStoppingResponse, CheckTrialEarlyStoppingResponse__Output as _hyperdial_v1_CheckTrialEarlyStoppingResponse__Output } from '../../hyperdial/v1/CheckTrialEarlyStoppingResponse';
import type { CompleteTrialRequest as _hyperdial_v1_CompleteTrialRequest, CompleteTrialRequest__Output as _hyperdial_v1_CompleteTrialRequest__Output } from '../../hyperdial/v1/CompleteTrialRequest';
import type { CompleteTrialResponse as _hyperdial_v1_CompleteTrialResponse, CompleteTrialResponse__Output as _hyperdial_v1_CompleteTrialResponse__Output } from '../../hyperdial/v1/CompleteTrialResponse';
import type { ComputeParameterImportanceRequest as _hyperdial_v1_ComputeParameterImportanceRequest, ComputeParameterImportanceRequest__Output as _hyperdial_v1_ComputeParameterImportanceRequest__Output } from '../../hyperdial/v1/ComputeParameterImportanceRequest';
import type { ComputeParameterImportanceResponse as _hyperdial_v1_ComputeParameterImportanceResponse, ComputeParameterImportanceResponse__Output as _hyperdial_v1_ComputeParameterImportanceResponse__Output } from '../../hyperdial/v1/ComputeParameterImportanceResponse';
import type { CreateStudyRequest as _hyperdial_v1_CreateStudyRequest, CreateStudyRequest__Output as _hyperdial_v1_CreateStudyRequest__Output } from '../../hyperdial/v1/CreateStudyRequest';
import type { CreateStudyResponse as _hyperdial_v1_CreateStudyResponse, CreateStudyResponse__Output as _hyperdial_v1_CreateStudyResponse__Output } from '../../hyperdial/v1/CreateStudyResponse';
import type { CreateTrialRequest as _hyperdial_v1_CreateTrialRequest, CreateTrialRequest__Output as _hyperdial_v1_CreateTrialRequest__Output } from '../../hyperdial/v1/CreateTrialRequest';
import type { CreateTrialResponse as _hyperdial_v1_CreateTrialResponse, CreateTrialResponse__Output as _hyperdial_v1_CreateTrialResponse__Output } from '../../hyperdial/v1/CreateTrialResponse';
import type { DeleteStudyRequest as _hyperdial_v1_DeleteStudyRequest, DeleteStudyRequest__Output as _hyperdial_v1_DeleteStudyRequest__Output } from '../../hyperdial/v1/DeleteStudyRequest';
import type { DeleteStudyResponse as _hyperdial_v1_DeleteStudyResponse, DeleteStudyResponse__Output as _hyperdial_v1_DeleteStudyResponse__Output } from '../../hyperdial/v1/DeleteStudyResponse';
import type { GetStudyRequest as _hyperdial_v1_GetStudyRequest, GetStudyRequest__Output as _hyperdial_v1_GetStudyRequest__Output } from '../../hyperdial/v1/GetStudyRequest';
import type { GetStudyResponse as _hyperdial_v1_GetStudyResponse, GetStudyResponse__Output as _hyperdial_v1_GetStudyResponse__Output } from '../../hyperdial/v1/GetStudyResponse';
import type { GetTrialRequest as _hyperdial_v1_GetTrialRequest, GetTrialRequest__Output as _hyperdial_v1_GetTrialRequest__Output } from '../../hyperdial/v1/GetTrialRequest';
import type { GetTrialResponse as _hyperdial_v1_GetTrialResponse, GetTrialResponse__Output as _hyperdial_v1_GetTrialResponse__Output } from '../../hyperdial/v1/GetTrialResponse';
import type { HeartbeatTrialRequest as _hyperdial_v1_HeartbeatTrialRequest, HeartbeatTrialRequest__Output as _hyperdial_v1_HeartbeatTrialRequest__Output } from '../../hyperdial/v1/HeartbeatTrialRequest';
import type { HeartbeatTrialResponse as _hyperdial_v1_HeartbeatTrialResponse, HeartbeatTrialResponse__Output as _hyperdial_v1_HeartbeatTrialResponse__Output } from '../../hyperdial/v1/HeartbeatTrialResponse';
import type { ListOptimalTrialsRequest as _hyperdial_v1_ListOptimalTrialsRequest, ListOptimalTrialsRequest__Output as _hyperdial_v1_ListOptimalTrialsRequest__Output } from '../../hyperdial/v1/ListOptimalTrialsRequest';
import type { ListOptimalTrialsResponse as _hyperdial_v1_ListOptimalTrialsResponse, ListOptimalTrialsResponse__Output as _hyperdial_v1_ListOptimalTrialsResponse__Output } from '../../hyperdial/v1/ListOptimalTrialsResponse';
import type { ListStudiesRequest as _hyperdial_v1_ListStudiesRequest, ListStudiesRequest__Output as _hyperdial_v1_ListStudiesRequest__Output } from '../../hyperdial/v1/ListStudiesRequest';
import type { ListStudiesResponse as _hyperdial_v1_ListStudiesResponse, ListStudiesResponse__Output as _hyperdial_v1_ListStudiesResponse__Output } from '../../hyperdial/v1/ListStudiesResponse';
import type { ListTrialsRequest as _hyperdial_v1_ListTrialsRequest, ListTrialsRequest__Output as _hyperdial_v1_ListTrialsRequest__Output } from '../../hyperdial/v1/ListTrialsRequest';
import type { ListTrialsResponse as _hyperdial_v1_ListTrialsResponse, ListTrialsResponse__Output as _hyperdial_v1_ListTrialsResponse__Output } from '../../hyperdial/v1/ListTrialsResponse';
import type { SuggestTrialsRequest as _hyperdial_v1_SuggestTrialsRequest, SuggestTrialsRequest__Output as _hyperdial_v1_SuggestTrialsRequest__Output } from '../../hyperdial/v1/SuggestTrialsRequest';
import type { SuggestTrialsResponse as _hyperdial_v1_SuggestTrialsResponse, SuggestTrialsResponse__Output as _hyperdial_v1_SuggestTrialsResponse__Output } from '../../hyperdial/v1/SuggestTrialsResponse';

/**
 * Hyperparameter tuning: a worker asks which parameters to try next (`SuggestTrials`),
 * runs its training job and tells the result (`CompleteTrial`).
 * 
 * Errors carry a `google.rpc.Status` with a `google.rpc.ErrorInfo` whose `reason` is a stable
 * token (for example `STUDY_NOT_FOUND`, `STUDY_COMPLETE`) and whose `domain` is `hyperdial.dev`.
 */
export interface TuningServiceClient extends grpc.Client {
  /**
   * Reports an intermediate measurement of a RUNNING trial, renews its lease (a report is a
   * heartbeat) and answers whether the trial should stop, by the study's early-stopping
   * policy. A trial told to stop is `TRIAL_STATE_STOPPED` at once. FAILED_PRECONDITION
   * (`TRIAL_NOT_RUNNING`) when the trial is no longer RUNNING, (`STEP_NOT_INCREASING`) for a
   * step below the trial's last one, or at it with other values.
   */
  AddTrialMeasurement(argument: _hyperdial_v1_AddTrialMeasurementRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_AddTrialMeasurementResponse__Output>): grpc.ClientUnaryCall;
  AddTrialMeasurement(argument: _hyperdial_v1_AddTrialMeasurementRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_AddTrialMeasurementResponse__Output>): grpc.ClientUnaryCall;
  AddTrialMeasurement(argument: _hyperdial_v1_AddTrialMeasurementRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_AddTrialMeasurementResponse__Output>): grpc.ClientUnaryCall;
  AddTrialMeasurement(argument: _hyperdial_v1_AddTrialMeasurementRequest, callback: grpc.requestCallback<_hyperdial_v1_AddTrialMeasurementResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Reports an intermediate measurement of a RUNNING trial, renews its lease (a report is a
   * heartbeat) and answers whether the trial should stop, by the study's early-stopping
   * policy. A trial told to stop is `TRIAL_STATE_STOPPED` at once. FAILED_PRECONDITION
   * (`TRIAL_NOT_RUNNING`) when the trial is no longer RUNNING, (`STEP_NOT_INCREASING`) for a
   * step below the trial's last one, or at it with other values.
   */
  addTrialMeasurement(argument: _hyperdial_v1_AddTrialMeasurementRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_AddTrialMeasurementResponse__Output>): grpc.ClientUnaryCall;
  addTrialMeasurement(argument: _hyperdial_v1_AddTrialMeasurementRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_AddTrialMeasurementResponse__Output>): grpc.ClientUnaryCall;
  addTrialMeasurement(argument: _hyperdial_v1_AddTrialMeasurementRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_AddTrialMeasurementResponse__Output>): grpc.ClientUnaryCall;
  addTrialMeasurement(argument: _hyperdial_v1_AddTrialMeasurementRequest, callback: grpc.requestCallback<_hyperdial_v1_AddTrialMeasurementResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Answers whether a trial should stop, from the measurements reported so far, without
   * reporting one (for workers that report through another channel). Read-only.
   */
  CheckTrialEarlyStopping(argument: _hyperdial_v1_CheckTrialEarlyStoppingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CheckTrialEarlyStoppingResponse__Output>): grpc.ClientUnaryCall;
  CheckTrialEarlyStopping(argument: _hyperdial_v1_CheckTrialEarlyStoppingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_CheckTrialEarlyStoppingResponse__Output>): grpc.ClientUnaryCall;
  CheckTrialEarlyStopping(argument: _hyperdial_v1_CheckTrialEarlyStoppingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CheckTrialEarlyStoppingResponse__Output>): grpc.ClientUnaryCall;
  CheckTrialEarlyStopping(argument: _hyperdial_v1_CheckTrialEarlyStoppingRequest, callback: grpc.requestCallback<_hyperdial_v1_CheckTrialEarlyStoppingResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Answers whether a trial should stop, from the measurements reported so far, without
   * reporting one (for workers that report through another channel). Read-only.
   */
  checkTrialEarlyStopping(argument: _hyperdial_v1_CheckTrialEarlyStoppingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CheckTrialEarlyStoppingResponse__Output>): grpc.ClientUnaryCall;
  checkTrialEarlyStopping(argument: _hyperdial_v1_CheckTrialEarlyStoppingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_CheckTrialEarlyStoppingResponse__Output>): grpc.ClientUnaryCall;
  checkTrialEarlyStopping(argument: _hyperdial_v1_CheckTrialEarlyStoppingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CheckTrialEarlyStoppingResponse__Output>): grpc.ClientUnaryCall;
  checkTrialEarlyStopping(argument: _hyperdial_v1_CheckTrialEarlyStoppingRequest, callback: grpc.requestCallback<_hyperdial_v1_CheckTrialEarlyStoppingResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Tell: records the result (or the failure) of a RUNNING trial.
   */
  CompleteTrial(argument: _hyperdial_v1_CompleteTrialRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CompleteTrialResponse__Output>): grpc.ClientUnaryCall;
  CompleteTrial(argument: _hyperdial_v1_CompleteTrialRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_CompleteTrialResponse__Output>): grpc.ClientUnaryCall;
  CompleteTrial(argument: _hyperdial_v1_CompleteTrialRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CompleteTrialResponse__Output>): grpc.ClientUnaryCall;
  CompleteTrial(argument: _hyperdial_v1_CompleteTrialRequest, callback: grpc.requestCallback<_hyperdial_v1_CompleteTrialResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Tell: records the result (or the failure) of a RUNNING trial.
   */
  completeTrial(argument: _hyperdial_v1_CompleteTrialRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CompleteTrialResponse__Output>): grpc.ClientUnaryCall;
  completeTrial(argument: _hyperdial_v1_CompleteTrialRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_CompleteTrialResponse__Output>): grpc.ClientUnaryCall;
  completeTrial(argument: _hyperdial_v1_CompleteTrialRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CompleteTrialResponse__Output>): grpc.ClientUnaryCall;
  completeTrial(argument: _hyperdial_v1_CompleteTrialRequest, callback: grpc.requestCallback<_hyperdial_v1_CompleteTrialResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Ranks the parameters of a study by how much they matter to one objective, from its
   * completed trials (PED-ANOVA; see docs/algorithms.md). Read-only.
   * FAILED_PRECONDITION (`NOT_ENOUGH_TRIALS`) with fewer completed trials than the method
   * needs.
   */
  ComputeParameterImportance(argument: _hyperdial_v1_ComputeParameterImportanceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ComputeParameterImportanceResponse__Output>): grpc.ClientUnaryCall;
  ComputeParameterImportance(argument: _hyperdial_v1_ComputeParameterImportanceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_ComputeParameterImportanceResponse__Output>): grpc.ClientUnaryCall;
  ComputeParameterImportance(argument: _hyperdial_v1_ComputeParameterImportanceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ComputeParameterImportanceResponse__Output>): grpc.ClientUnaryCall;
  ComputeParameterImportance(argument: _hyperdial_v1_ComputeParameterImportanceRequest, callback: grpc.requestCallback<_hyperdial_v1_ComputeParameterImportanceResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Ranks the parameters of a study by how much they matter to one objective, from its
   * completed trials (PED-ANOVA; see docs/algorithms.md). Read-only.
   * FAILED_PRECONDITION (`NOT_ENOUGH_TRIALS`) with fewer completed trials than the method
   * needs.
   */
  computeParameterImportance(argument: _hyperdial_v1_ComputeParameterImportanceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ComputeParameterImportanceResponse__Output>): grpc.ClientUnaryCall;
  computeParameterImportance(argument: _hyperdial_v1_ComputeParameterImportanceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_ComputeParameterImportanceResponse__Output>): grpc.ClientUnaryCall;
  computeParameterImportance(argument: _hyperdial_v1_ComputeParameterImportanceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ComputeParameterImportanceResponse__Output>): grpc.ClientUnaryCall;
  computeParameterImportance(argument: _hyperdial_v1_ComputeParameterImportanceRequest, callback: grpc.requestCallback<_hyperdial_v1_ComputeParameterImportanceResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Creates a study. ALREADY_EXISTS (`STUDY_ALREADY_EXISTS`) if the id is taken.
   */
  CreateStudy(argument: _hyperdial_v1_CreateStudyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CreateStudyResponse__Output>): grpc.ClientUnaryCall;
  CreateStudy(argument: _hyperdial_v1_CreateStudyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_CreateStudyResponse__Output>): grpc.ClientUnaryCall;
  CreateStudy(argument: _hyperdial_v1_CreateStudyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CreateStudyResponse__Output>): grpc.ClientUnaryCall;
  CreateStudy(argument: _hyperdial_v1_CreateStudyRequest, callback: grpc.requestCallback<_hyperdial_v1_CreateStudyResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Creates a study. ALREADY_EXISTS (`STUDY_ALREADY_EXISTS`) if the id is taken.
   */
  createStudy(argument: _hyperdial_v1_CreateStudyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CreateStudyResponse__Output>): grpc.ClientUnaryCall;
  createStudy(argument: _hyperdial_v1_CreateStudyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_CreateStudyResponse__Output>): grpc.ClientUnaryCall;
  createStudy(argument: _hyperdial_v1_CreateStudyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CreateStudyResponse__Output>): grpc.ClientUnaryCall;
  createStudy(argument: _hyperdial_v1_CreateStudyRequest, callback: grpc.requestCallback<_hyperdial_v1_CreateStudyResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Adds a trial: enqueues parameters for the next ask (warm start, points chosen by hand),
   * or records a trial that already finished elsewhere (import of past results).
   */
  CreateTrial(argument: _hyperdial_v1_CreateTrialRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CreateTrialResponse__Output>): grpc.ClientUnaryCall;
  CreateTrial(argument: _hyperdial_v1_CreateTrialRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_CreateTrialResponse__Output>): grpc.ClientUnaryCall;
  CreateTrial(argument: _hyperdial_v1_CreateTrialRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CreateTrialResponse__Output>): grpc.ClientUnaryCall;
  CreateTrial(argument: _hyperdial_v1_CreateTrialRequest, callback: grpc.requestCallback<_hyperdial_v1_CreateTrialResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Adds a trial: enqueues parameters for the next ask (warm start, points chosen by hand),
   * or records a trial that already finished elsewhere (import of past results).
   */
  createTrial(argument: _hyperdial_v1_CreateTrialRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CreateTrialResponse__Output>): grpc.ClientUnaryCall;
  createTrial(argument: _hyperdial_v1_CreateTrialRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_CreateTrialResponse__Output>): grpc.ClientUnaryCall;
  createTrial(argument: _hyperdial_v1_CreateTrialRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_CreateTrialResponse__Output>): grpc.ClientUnaryCall;
  createTrial(argument: _hyperdial_v1_CreateTrialRequest, callback: grpc.requestCallback<_hyperdial_v1_CreateTrialResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Deletes a study and every one of its trials.
   */
  DeleteStudy(argument: _hyperdial_v1_DeleteStudyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_DeleteStudyResponse__Output>): grpc.ClientUnaryCall;
  DeleteStudy(argument: _hyperdial_v1_DeleteStudyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_DeleteStudyResponse__Output>): grpc.ClientUnaryCall;
  DeleteStudy(argument: _hyperdial_v1_DeleteStudyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_DeleteStudyResponse__Output>): grpc.ClientUnaryCall;
  DeleteStudy(argument: _hyperdial_v1_DeleteStudyRequest, callback: grpc.requestCallback<_hyperdial_v1_DeleteStudyResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Deletes a study and every one of its trials.
   */
  deleteStudy(argument: _hyperdial_v1_DeleteStudyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_DeleteStudyResponse__Output>): grpc.ClientUnaryCall;
  deleteStudy(argument: _hyperdial_v1_DeleteStudyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_DeleteStudyResponse__Output>): grpc.ClientUnaryCall;
  deleteStudy(argument: _hyperdial_v1_DeleteStudyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_DeleteStudyResponse__Output>): grpc.ClientUnaryCall;
  deleteStudy(argument: _hyperdial_v1_DeleteStudyRequest, callback: grpc.requestCallback<_hyperdial_v1_DeleteStudyResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Returns a study. NOT_FOUND (`STUDY_NOT_FOUND`) if there is none of that name.
   */
  GetStudy(argument: _hyperdial_v1_GetStudyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_GetStudyResponse__Output>): grpc.ClientUnaryCall;
  GetStudy(argument: _hyperdial_v1_GetStudyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_GetStudyResponse__Output>): grpc.ClientUnaryCall;
  GetStudy(argument: _hyperdial_v1_GetStudyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_GetStudyResponse__Output>): grpc.ClientUnaryCall;
  GetStudy(argument: _hyperdial_v1_GetStudyRequest, callback: grpc.requestCallback<_hyperdial_v1_GetStudyResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Returns a study. NOT_FOUND (`STUDY_NOT_FOUND`) if there is none of that name.
   */
  getStudy(argument: _hyperdial_v1_GetStudyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_GetStudyResponse__Output>): grpc.ClientUnaryCall;
  getStudy(argument: _hyperdial_v1_GetStudyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_GetStudyResponse__Output>): grpc.ClientUnaryCall;
  getStudy(argument: _hyperdial_v1_GetStudyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_GetStudyResponse__Output>): grpc.ClientUnaryCall;
  getStudy(argument: _hyperdial_v1_GetStudyRequest, callback: grpc.requestCallback<_hyperdial_v1_GetStudyResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Returns a trial. NOT_FOUND (`TRIAL_NOT_FOUND`) if there is none of that name.
   */
  GetTrial(argument: _hyperdial_v1_GetTrialRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_GetTrialResponse__Output>): grpc.ClientUnaryCall;
  GetTrial(argument: _hyperdial_v1_GetTrialRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_GetTrialResponse__Output>): grpc.ClientUnaryCall;
  GetTrial(argument: _hyperdial_v1_GetTrialRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_GetTrialResponse__Output>): grpc.ClientUnaryCall;
  GetTrial(argument: _hyperdial_v1_GetTrialRequest, callback: grpc.requestCallback<_hyperdial_v1_GetTrialResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Returns a trial. NOT_FOUND (`TRIAL_NOT_FOUND`) if there is none of that name.
   */
  getTrial(argument: _hyperdial_v1_GetTrialRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_GetTrialResponse__Output>): grpc.ClientUnaryCall;
  getTrial(argument: _hyperdial_v1_GetTrialRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_GetTrialResponse__Output>): grpc.ClientUnaryCall;
  getTrial(argument: _hyperdial_v1_GetTrialRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_GetTrialResponse__Output>): grpc.ClientUnaryCall;
  getTrial(argument: _hyperdial_v1_GetTrialRequest, callback: grpc.requestCallback<_hyperdial_v1_GetTrialResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Renews the lease of a RUNNING trial: the worker is still on it.
   * FAILED_PRECONDITION (`TRIAL_NOT_RUNNING`) when the trial is no longer RUNNING.
   */
  HeartbeatTrial(argument: _hyperdial_v1_HeartbeatTrialRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_HeartbeatTrialResponse__Output>): grpc.ClientUnaryCall;
  HeartbeatTrial(argument: _hyperdial_v1_HeartbeatTrialRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_HeartbeatTrialResponse__Output>): grpc.ClientUnaryCall;
  HeartbeatTrial(argument: _hyperdial_v1_HeartbeatTrialRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_HeartbeatTrialResponse__Output>): grpc.ClientUnaryCall;
  HeartbeatTrial(argument: _hyperdial_v1_HeartbeatTrialRequest, callback: grpc.requestCallback<_hyperdial_v1_HeartbeatTrialResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Renews the lease of a RUNNING trial: the worker is still on it.
   * FAILED_PRECONDITION (`TRIAL_NOT_RUNNING`) when the trial is no longer RUNNING.
   */
  heartbeatTrial(argument: _hyperdial_v1_HeartbeatTrialRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_HeartbeatTrialResponse__Output>): grpc.ClientUnaryCall;
  heartbeatTrial(argument: _hyperdial_v1_HeartbeatTrialRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_HeartbeatTrialResponse__Output>): grpc.ClientUnaryCall;
  heartbeatTrial(argument: _hyperdial_v1_HeartbeatTrialRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_HeartbeatTrialResponse__Output>): grpc.ClientUnaryCall;
  heartbeatTrial(argument: _hyperdial_v1_HeartbeatTrialRequest, callback: grpc.requestCallback<_hyperdial_v1_HeartbeatTrialResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Returns the best completed trial; with several objectives, every Pareto-optimal one.
   */
  ListOptimalTrials(argument: _hyperdial_v1_ListOptimalTrialsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ListOptimalTrialsResponse__Output>): grpc.ClientUnaryCall;
  ListOptimalTrials(argument: _hyperdial_v1_ListOptimalTrialsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_ListOptimalTrialsResponse__Output>): grpc.ClientUnaryCall;
  ListOptimalTrials(argument: _hyperdial_v1_ListOptimalTrialsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ListOptimalTrialsResponse__Output>): grpc.ClientUnaryCall;
  ListOptimalTrials(argument: _hyperdial_v1_ListOptimalTrialsRequest, callback: grpc.requestCallback<_hyperdial_v1_ListOptimalTrialsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Returns the best completed trial; with several objectives, every Pareto-optimal one.
   */
  listOptimalTrials(argument: _hyperdial_v1_ListOptimalTrialsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ListOptimalTrialsResponse__Output>): grpc.ClientUnaryCall;
  listOptimalTrials(argument: _hyperdial_v1_ListOptimalTrialsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_ListOptimalTrialsResponse__Output>): grpc.ClientUnaryCall;
  listOptimalTrials(argument: _hyperdial_v1_ListOptimalTrialsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ListOptimalTrialsResponse__Output>): grpc.ClientUnaryCall;
  listOptimalTrials(argument: _hyperdial_v1_ListOptimalTrialsRequest, callback: grpc.requestCallback<_hyperdial_v1_ListOptimalTrialsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Lists studies in order of their id, one page at a time.
   */
  ListStudies(argument: _hyperdial_v1_ListStudiesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  ListStudies(argument: _hyperdial_v1_ListStudiesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  ListStudies(argument: _hyperdial_v1_ListStudiesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  ListStudies(argument: _hyperdial_v1_ListStudiesRequest, callback: grpc.requestCallback<_hyperdial_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Lists studies in order of their id, one page at a time.
   */
  listStudies(argument: _hyperdial_v1_ListStudiesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  listStudies(argument: _hyperdial_v1_ListStudiesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  listStudies(argument: _hyperdial_v1_ListStudiesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  listStudies(argument: _hyperdial_v1_ListStudiesRequest, callback: grpc.requestCallback<_hyperdial_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Lists the trials of a study in order of their number, one page at a time.
   */
  ListTrials(argument: _hyperdial_v1_ListTrialsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ListTrialsResponse__Output>): grpc.ClientUnaryCall;
  ListTrials(argument: _hyperdial_v1_ListTrialsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_ListTrialsResponse__Output>): grpc.ClientUnaryCall;
  ListTrials(argument: _hyperdial_v1_ListTrialsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ListTrialsResponse__Output>): grpc.ClientUnaryCall;
  ListTrials(argument: _hyperdial_v1_ListTrialsRequest, callback: grpc.requestCallback<_hyperdial_v1_ListTrialsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Lists the trials of a study in order of their number, one page at a time.
   */
  listTrials(argument: _hyperdial_v1_ListTrialsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ListTrialsResponse__Output>): grpc.ClientUnaryCall;
  listTrials(argument: _hyperdial_v1_ListTrialsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_ListTrialsResponse__Output>): grpc.ClientUnaryCall;
  listTrials(argument: _hyperdial_v1_ListTrialsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_ListTrialsResponse__Output>): grpc.ClientUnaryCall;
  listTrials(argument: _hyperdial_v1_ListTrialsRequest, callback: grpc.requestCallback<_hyperdial_v1_ListTrialsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Ask: hands out up to `count` RUNNING trials, taken in this order: (1) the RUNNING trials
   * the asking `client_id` holds already, oldest first, leases renewed; (2) the points of
   * trials whose lease expired, as new trials; (3) enqueued trials, oldest first; (4) new
   * points of the study's algorithm. The response lists the trials of (1) and (3) (which
   * existed before the ask) before those of (2) and (4) (created by it, in order of number).
   * Fewer than `count` only when the study has fewer left; none left is OUT_OF_RANGE with
   * reason `STUDY_COMPLETE` (grid exhausted or `max_trials` reached).
   */
  SuggestTrials(argument: _hyperdial_v1_SuggestTrialsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_SuggestTrialsResponse__Output>): grpc.ClientUnaryCall;
  SuggestTrials(argument: _hyperdial_v1_SuggestTrialsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_SuggestTrialsResponse__Output>): grpc.ClientUnaryCall;
  SuggestTrials(argument: _hyperdial_v1_SuggestTrialsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_SuggestTrialsResponse__Output>): grpc.ClientUnaryCall;
  SuggestTrials(argument: _hyperdial_v1_SuggestTrialsRequest, callback: grpc.requestCallback<_hyperdial_v1_SuggestTrialsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Ask: hands out up to `count` RUNNING trials, taken in this order: (1) the RUNNING trials
   * the asking `client_id` holds already, oldest first, leases renewed; (2) the points of
   * trials whose lease expired, as new trials; (3) enqueued trials, oldest first; (4) new
   * points of the study's algorithm. The response lists the trials of (1) and (3) (which
   * existed before the ask) before those of (2) and (4) (created by it, in order of number).
   * Fewer than `count` only when the study has fewer left; none left is OUT_OF_RANGE with
   * reason `STUDY_COMPLETE` (grid exhausted or `max_trials` reached).
   */
  suggestTrials(argument: _hyperdial_v1_SuggestTrialsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_SuggestTrialsResponse__Output>): grpc.ClientUnaryCall;
  suggestTrials(argument: _hyperdial_v1_SuggestTrialsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_hyperdial_v1_SuggestTrialsResponse__Output>): grpc.ClientUnaryCall;
  suggestTrials(argument: _hyperdial_v1_SuggestTrialsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_hyperdial_v1_SuggestTrialsResponse__Output>): grpc.ClientUnaryCall;
  suggestTrials(argument: _hyperdial_v1_SuggestTrialsRequest, callback: grpc.requestCallback<_hyperdial_v1_SuggestTrialsResponse__Output>): grpc.ClientUnaryCall;
  
}

/**
 * Hyperparameter tuning: a worker asks which parameters to try next (`SuggestTrials`),
 * runs its training job and tells the result (`CompleteTrial`).
 * 
 * Errors carry a `google.rpc.Status` with a `google.rpc.ErrorInfo` whose `reason` is a stable
 * token (for example `STUDY_NOT_FOUND`, `STUDY_COMPLETE`) and whose `domain` is `hyperdial.dev`.
 */
export interface TuningServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Reports an intermediate measurement of a RUNNING trial, renews its lease (a report is a
   * heartbeat) and answers whether the trial should stop, by the study's early-stopping
   * policy. A trial told to stop is `TRIAL_STATE_STOPPED` at once. FAILED_PRECONDITION
   * (`TRIAL_NOT_RUNNING`) when the trial is no longer RUNNING, (`STEP_NOT_INCREASING`) for a
   * step below the trial's last one, or at it with other values.
   */
  AddTrialMeasurement: grpc.handleUnaryCall<_hyperdial_v1_AddTrialMeasurementRequest__Output, _hyperdial_v1_AddTrialMeasurementResponse>;
  
  /**
   * Answers whether a trial should stop, from the measurements reported so far, without
   * reporting one (for workers that report through another channel). Read-only.
   */
  CheckTrialEarlyStopping: grpc.handleUnaryCall<_hyperdial_v1_CheckTrialEarlyStoppingRequest__Output, _hyperdial_v1_CheckTrialEarlyStoppingResponse>;
  
  /**
   * Tell: records the result (or the failure) of a RUNNING trial.
   */
  CompleteTrial: grpc.handleUnaryCall<_hyperdial_v1_CompleteTrialRequest__Output, _hyperdial_v1_CompleteTrialResponse>;
  
  /**
   * Ranks the parameters of a study by how much they matter to one objective, from its
   * completed trials (PED-ANOVA; see docs/algorithms.md). Read-only.
   * FAILED_PRECONDITION (`NOT_ENOUGH_TRIALS`) with fewer completed trials than the method
   * needs.
   */
  ComputeParameterImportance: grpc.handleUnaryCall<_hyperdial_v1_ComputeParameterImportanceRequest__Output, _hyperdial_v1_ComputeParameterImportanceResponse>;
  
  /**
   * Creates a study. ALREADY_EXISTS (`STUDY_ALREADY_EXISTS`) if the id is taken.
   */
  CreateStudy: grpc.handleUnaryCall<_hyperdial_v1_CreateStudyRequest__Output, _hyperdial_v1_CreateStudyResponse>;
  
  /**
   * Adds a trial: enqueues parameters for the next ask (warm start, points chosen by hand),
   * or records a trial that already finished elsewhere (import of past results).
   */
  CreateTrial: grpc.handleUnaryCall<_hyperdial_v1_CreateTrialRequest__Output, _hyperdial_v1_CreateTrialResponse>;
  
  /**
   * Deletes a study and every one of its trials.
   */
  DeleteStudy: grpc.handleUnaryCall<_hyperdial_v1_DeleteStudyRequest__Output, _hyperdial_v1_DeleteStudyResponse>;
  
  /**
   * Returns a study. NOT_FOUND (`STUDY_NOT_FOUND`) if there is none of that name.
   */
  GetStudy: grpc.handleUnaryCall<_hyperdial_v1_GetStudyRequest__Output, _hyperdial_v1_GetStudyResponse>;
  
  /**
   * Returns a trial. NOT_FOUND (`TRIAL_NOT_FOUND`) if there is none of that name.
   */
  GetTrial: grpc.handleUnaryCall<_hyperdial_v1_GetTrialRequest__Output, _hyperdial_v1_GetTrialResponse>;
  
  /**
   * Renews the lease of a RUNNING trial: the worker is still on it.
   * FAILED_PRECONDITION (`TRIAL_NOT_RUNNING`) when the trial is no longer RUNNING.
   */
  HeartbeatTrial: grpc.handleUnaryCall<_hyperdial_v1_HeartbeatTrialRequest__Output, _hyperdial_v1_HeartbeatTrialResponse>;
  
  /**
   * Returns the best completed trial; with several objectives, every Pareto-optimal one.
   */
  ListOptimalTrials: grpc.handleUnaryCall<_hyperdial_v1_ListOptimalTrialsRequest__Output, _hyperdial_v1_ListOptimalTrialsResponse>;
  
  /**
   * Lists studies in order of their id, one page at a time.
   */
  ListStudies: grpc.handleUnaryCall<_hyperdial_v1_ListStudiesRequest__Output, _hyperdial_v1_ListStudiesResponse>;
  
  /**
   * Lists the trials of a study in order of their number, one page at a time.
   */
  ListTrials: grpc.handleUnaryCall<_hyperdial_v1_ListTrialsRequest__Output, _hyperdial_v1_ListTrialsResponse>;
  
  /**
   * Ask: hands out up to `count` RUNNING trials, taken in this order: (1) the RUNNING trials
   * the asking `client_id` holds already, oldest first, leases renewed; (2) the points of
   * trials whose lease expired, as new trials; (3) enqueued trials, oldest first; (4) new
   * points of the study's algorithm. The response lists the trials of (1) and (3) (which
   * existed before the ask) before those of (2) and (4) (created by it, in order of number).
   * Fewer than `count` only when the study has fewer left; none left is OUT_OF_RANGE with
   * reason `STUDY_COMPLETE` (grid exhausted or `max_trials` reached).
   */
  SuggestTrials: grpc.handleUnaryCall<_hyperdial_v1_SuggestTrialsRequest__Output, _hyperdial_v1_SuggestTrialsResponse>;
  
}

export interface TuningServiceDefinition extends grpc.ServiceDefinition {
  AddTrialMeasurement: MethodDefinition<_hyperdial_v1_AddTrialMeasurementRequest, _hyperdial_v1_AddTrialMeasurementResponse, _hyperdial_v1_AddTrialMeasurementRequest__Output, _hyperdial_v1_AddTrialMeasurementResponse__Output>
  CheckTrialEarlyStopping: MethodDefinition<_hyperdial_v1_CheckTrialEarlyStoppingRequest, _hyperdial_v1_CheckTrialEarlyStoppingResponse, _hyperdial_v1_CheckTrialEarlyStoppingRequest__Output, _hyperdial_v1_CheckTrialEarlyStoppingResponse__Output>
  CompleteTrial: MethodDefinition<_hyperdial_v1_CompleteTrialRequest, _hyperdial_v1_CompleteTrialResponse, _hyperdial_v1_CompleteTrialRequest__Output, _hyperdial_v1_CompleteTrialResponse__Output>
  ComputeParameterImportance: MethodDefinition<_hyperdial_v1_ComputeParameterImportanceRequest, _hyperdial_v1_ComputeParameterImportanceResponse, _hyperdial_v1_ComputeParameterImportanceRequest__Output, _hyperdial_v1_ComputeParameterImportanceResponse__Output>
  CreateStudy: MethodDefinition<_hyperdial_v1_CreateStudyRequest, _hyperdial_v1_CreateStudyResponse, _hyperdial_v1_CreateStudyRequest__Output, _hyperdial_v1_CreateStudyResponse__Output>
  CreateTrial: MethodDefinition<_hyperdial_v1_CreateTrialRequest, _hyperdial_v1_CreateTrialResponse, _hyperdial_v1_CreateTrialRequest__Output, _hyperdial_v1_CreateTrialResponse__Output>
  DeleteStudy: MethodDefinition<_hyperdial_v1_DeleteStudyRequest, _hyperdial_v1_DeleteStudyResponse, _hyperdial_v1_DeleteStudyRequest__Output, _hyperdial_v1_DeleteStudyResponse__Output>
  GetStudy: MethodDefinition<_hyperdial_v1_GetStudyRequest, _hyperdial_v1_GetStudyResponse, _hyperdial_v1_GetStudyRequest__Output, _hyperdial_v1_GetStudyResponse__Output>
  GetTrial: MethodDefinition<_hyperdial_v1_GetTrialRequest, _hyperdial_v1_GetTrialResponse, _hyperdial_v1_GetTrialRequest__Output, _hyperdial_v1_GetTrialResponse__Output>
  HeartbeatTrial: MethodDefinition<_hyperdial_v1_HeartbeatTrialRequest, _hyperdial_v1_HeartbeatTrialResponse, _hyperdial_v1_HeartbeatTrialRequest__Output, _hyperdial_v1_HeartbeatTrialResponse__Output>
  ListOptimalTrials: MethodDefinition<_hyperdial_v1_ListOptimalTrialsRequest, _hyperdial_v1_ListOptimalTrialsResponse, _hyperdial_v1_ListOptimalTrialsRequest__Output, _hyperdial_v1_ListOptimalTrialsResponse__Output>
  ListStudies: MethodDefinition<_hyperdial_v1_ListStudiesRequest, _hyperdial_v1_ListStudiesResponse, _hyperdial_v1_ListStudiesRequest__Output, _hyperdial_v1_ListStudiesResponse__Output>
  ListTrials: MethodDefinition<_hyperdial_v1_ListTrialsRequest, _hyperdial_v1_ListTrialsResponse, _hyperdial_v1_ListTrialsRequest__Output, _hyperdial_v1_ListTrialsResponse__Output>
  SuggestTrials: MethodDefinition<_hyperdial_v1_SuggestTrialsRequest, _hyperdial_v1_SuggestTrialsResponse, _hyperdial_v1_SuggestTrialsRequest__Output, _hyperdial_v1_SuggestTrialsResponse__Output>
}
