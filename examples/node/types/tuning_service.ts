import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from './google/protobuf/Duration';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { AddTrialMeasurementRequest as _hyperdial_v1_AddTrialMeasurementRequest, AddTrialMeasurementRequest__Output as _hyperdial_v1_AddTrialMeasurementRequest__Output } from './hyperdial/v1/AddTrialMeasurementRequest';
import type { AddTrialMeasurementResponse as _hyperdial_v1_AddTrialMeasurementResponse, AddTrialMeasurementResponse__Output as _hyperdial_v1_AddTrialMeasurementResponse__Output } from './hyperdial/v1/AddTrialMeasurementResponse';
import type { CategoricalDomain as _hyperdial_v1_CategoricalDomain, CategoricalDomain__Output as _hyperdial_v1_CategoricalDomain__Output } from './hyperdial/v1/CategoricalDomain';
import type { CheckTrialEarlyStoppingRequest as _hyperdial_v1_CheckTrialEarlyStoppingRequest, CheckTrialEarlyStoppingRequest__Output as _hyperdial_v1_CheckTrialEarlyStoppingRequest__Output } from './hyperdial/v1/CheckTrialEarlyStoppingRequest';
import type { CheckTrialEarlyStoppingResponse as _hyperdial_v1_CheckTrialEarlyStoppingResponse, CheckTrialEarlyStoppingResponse__Output as _hyperdial_v1_CheckTrialEarlyStoppingResponse__Output } from './hyperdial/v1/CheckTrialEarlyStoppingResponse';
import type { CompleteTrialRequest as _hyperdial_v1_CompleteTrialRequest, CompleteTrialRequest__Output as _hyperdial_v1_CompleteTrialRequest__Output } from './hyperdial/v1/CompleteTrialRequest';
import type { CompleteTrialResponse as _hyperdial_v1_CompleteTrialResponse, CompleteTrialResponse__Output as _hyperdial_v1_CompleteTrialResponse__Output } from './hyperdial/v1/CompleteTrialResponse';
import type { ComputeParameterImportanceRequest as _hyperdial_v1_ComputeParameterImportanceRequest, ComputeParameterImportanceRequest__Output as _hyperdial_v1_ComputeParameterImportanceRequest__Output } from './hyperdial/v1/ComputeParameterImportanceRequest';
import type { ComputeParameterImportanceResponse as _hyperdial_v1_ComputeParameterImportanceResponse, ComputeParameterImportanceResponse__Output as _hyperdial_v1_ComputeParameterImportanceResponse__Output } from './hyperdial/v1/ComputeParameterImportanceResponse';
import type { CreateStudyRequest as _hyperdial_v1_CreateStudyRequest, CreateStudyRequest__Output as _hyperdial_v1_CreateStudyRequest__Output } from './hyperdial/v1/CreateStudyRequest';
import type { CreateStudyResponse as _hyperdial_v1_CreateStudyResponse, CreateStudyResponse__Output as _hyperdial_v1_CreateStudyResponse__Output } from './hyperdial/v1/CreateStudyResponse';
import type { CreateTrialRequest as _hyperdial_v1_CreateTrialRequest, CreateTrialRequest__Output as _hyperdial_v1_CreateTrialRequest__Output } from './hyperdial/v1/CreateTrialRequest';
import type { CreateTrialResponse as _hyperdial_v1_CreateTrialResponse, CreateTrialResponse__Output as _hyperdial_v1_CreateTrialResponse__Output } from './hyperdial/v1/CreateTrialResponse';
import type { DeleteStudyRequest as _hyperdial_v1_DeleteStudyRequest, DeleteStudyRequest__Output as _hyperdial_v1_DeleteStudyRequest__Output } from './hyperdial/v1/DeleteStudyRequest';
import type { DeleteStudyResponse as _hyperdial_v1_DeleteStudyResponse, DeleteStudyResponse__Output as _hyperdial_v1_DeleteStudyResponse__Output } from './hyperdial/v1/DeleteStudyResponse';
import type { DiscreteDomain as _hyperdial_v1_DiscreteDomain, DiscreteDomain__Output as _hyperdial_v1_DiscreteDomain__Output } from './hyperdial/v1/DiscreteDomain';
import type { EarlyStoppingDecision as _hyperdial_v1_EarlyStoppingDecision, EarlyStoppingDecision__Output as _hyperdial_v1_EarlyStoppingDecision__Output } from './hyperdial/v1/EarlyStoppingDecision';
import type { EarlyStoppingPolicy as _hyperdial_v1_EarlyStoppingPolicy, EarlyStoppingPolicy__Output as _hyperdial_v1_EarlyStoppingPolicy__Output } from './hyperdial/v1/EarlyStoppingPolicy';
import type { FloatDomain as _hyperdial_v1_FloatDomain, FloatDomain__Output as _hyperdial_v1_FloatDomain__Output } from './hyperdial/v1/FloatDomain';
import type { GetStudyRequest as _hyperdial_v1_GetStudyRequest, GetStudyRequest__Output as _hyperdial_v1_GetStudyRequest__Output } from './hyperdial/v1/GetStudyRequest';
import type { GetStudyResponse as _hyperdial_v1_GetStudyResponse, GetStudyResponse__Output as _hyperdial_v1_GetStudyResponse__Output } from './hyperdial/v1/GetStudyResponse';
import type { GetTrialRequest as _hyperdial_v1_GetTrialRequest, GetTrialRequest__Output as _hyperdial_v1_GetTrialRequest__Output } from './hyperdial/v1/GetTrialRequest';
import type { GetTrialResponse as _hyperdial_v1_GetTrialResponse, GetTrialResponse__Output as _hyperdial_v1_GetTrialResponse__Output } from './hyperdial/v1/GetTrialResponse';
import type { HeartbeatTrialRequest as _hyperdial_v1_HeartbeatTrialRequest, HeartbeatTrialRequest__Output as _hyperdial_v1_HeartbeatTrialRequest__Output } from './hyperdial/v1/HeartbeatTrialRequest';
import type { HeartbeatTrialResponse as _hyperdial_v1_HeartbeatTrialResponse, HeartbeatTrialResponse__Output as _hyperdial_v1_HeartbeatTrialResponse__Output } from './hyperdial/v1/HeartbeatTrialResponse';
import type { HyperbandRule as _hyperdial_v1_HyperbandRule, HyperbandRule__Output as _hyperdial_v1_HyperbandRule__Output } from './hyperdial/v1/HyperbandRule';
import type { IntDomain as _hyperdial_v1_IntDomain, IntDomain__Output as _hyperdial_v1_IntDomain__Output } from './hyperdial/v1/IntDomain';
import type { ListOptimalTrialsRequest as _hyperdial_v1_ListOptimalTrialsRequest, ListOptimalTrialsRequest__Output as _hyperdial_v1_ListOptimalTrialsRequest__Output } from './hyperdial/v1/ListOptimalTrialsRequest';
import type { ListOptimalTrialsResponse as _hyperdial_v1_ListOptimalTrialsResponse, ListOptimalTrialsResponse__Output as _hyperdial_v1_ListOptimalTrialsResponse__Output } from './hyperdial/v1/ListOptimalTrialsResponse';
import type { ListStudiesRequest as _hyperdial_v1_ListStudiesRequest, ListStudiesRequest__Output as _hyperdial_v1_ListStudiesRequest__Output } from './hyperdial/v1/ListStudiesRequest';
import type { ListStudiesResponse as _hyperdial_v1_ListStudiesResponse, ListStudiesResponse__Output as _hyperdial_v1_ListStudiesResponse__Output } from './hyperdial/v1/ListStudiesResponse';
import type { ListTrialsRequest as _hyperdial_v1_ListTrialsRequest, ListTrialsRequest__Output as _hyperdial_v1_ListTrialsRequest__Output } from './hyperdial/v1/ListTrialsRequest';
import type { ListTrialsResponse as _hyperdial_v1_ListTrialsResponse, ListTrialsResponse__Output as _hyperdial_v1_ListTrialsResponse__Output } from './hyperdial/v1/ListTrialsResponse';
import type { Measurement as _hyperdial_v1_Measurement, Measurement__Output as _hyperdial_v1_Measurement__Output } from './hyperdial/v1/Measurement';
import type { MedianStoppingRule as _hyperdial_v1_MedianStoppingRule, MedianStoppingRule__Output as _hyperdial_v1_MedianStoppingRule__Output } from './hyperdial/v1/MedianStoppingRule';
import type { ObjectiveSpec as _hyperdial_v1_ObjectiveSpec, ObjectiveSpec__Output as _hyperdial_v1_ObjectiveSpec__Output } from './hyperdial/v1/ObjectiveSpec';
import type { OutcomeConstraint as _hyperdial_v1_OutcomeConstraint, OutcomeConstraint__Output as _hyperdial_v1_OutcomeConstraint__Output } from './hyperdial/v1/OutcomeConstraint';
import type { ParameterImportance as _hyperdial_v1_ParameterImportance, ParameterImportance__Output as _hyperdial_v1_ParameterImportance__Output } from './hyperdial/v1/ParameterImportance';
import type { ParameterSpec as _hyperdial_v1_ParameterSpec, ParameterSpec__Output as _hyperdial_v1_ParameterSpec__Output } from './hyperdial/v1/ParameterSpec';
import type { ParameterValue as _hyperdial_v1_ParameterValue, ParameterValue__Output as _hyperdial_v1_ParameterValue__Output } from './hyperdial/v1/ParameterValue';
import type { ParentCondition as _hyperdial_v1_ParentCondition, ParentCondition__Output as _hyperdial_v1_ParentCondition__Output } from './hyperdial/v1/ParentCondition';
import type { PercentileStoppingRule as _hyperdial_v1_PercentileStoppingRule, PercentileStoppingRule__Output as _hyperdial_v1_PercentileStoppingRule__Output } from './hyperdial/v1/PercentileStoppingRule';
import type { Study as _hyperdial_v1_Study, Study__Output as _hyperdial_v1_Study__Output } from './hyperdial/v1/Study';
import type { StudySpec as _hyperdial_v1_StudySpec, StudySpec__Output as _hyperdial_v1_StudySpec__Output } from './hyperdial/v1/StudySpec';
import type { SuccessiveHalvingRule as _hyperdial_v1_SuccessiveHalvingRule, SuccessiveHalvingRule__Output as _hyperdial_v1_SuccessiveHalvingRule__Output } from './hyperdial/v1/SuccessiveHalvingRule';
import type { SuggestTrialsRequest as _hyperdial_v1_SuggestTrialsRequest, SuggestTrialsRequest__Output as _hyperdial_v1_SuggestTrialsRequest__Output } from './hyperdial/v1/SuggestTrialsRequest';
import type { SuggestTrialsResponse as _hyperdial_v1_SuggestTrialsResponse, SuggestTrialsResponse__Output as _hyperdial_v1_SuggestTrialsResponse__Output } from './hyperdial/v1/SuggestTrialsResponse';
import type { ThresholdStoppingRule as _hyperdial_v1_ThresholdStoppingRule, ThresholdStoppingRule__Output as _hyperdial_v1_ThresholdStoppingRule__Output } from './hyperdial/v1/ThresholdStoppingRule';
import type { Trial as _hyperdial_v1_Trial, Trial__Output as _hyperdial_v1_Trial__Output } from './hyperdial/v1/Trial';
import type { TrialFailure as _hyperdial_v1_TrialFailure, TrialFailure__Output as _hyperdial_v1_TrialFailure__Output } from './hyperdial/v1/TrialFailure';
import type { TrialInfeasibility as _hyperdial_v1_TrialInfeasibility, TrialInfeasibility__Output as _hyperdial_v1_TrialInfeasibility__Output } from './hyperdial/v1/TrialInfeasibility';
import type { TrialPrediction as _hyperdial_v1_TrialPrediction, TrialPrediction__Output as _hyperdial_v1_TrialPrediction__Output } from './hyperdial/v1/TrialPrediction';
import type { TrialStateCounts as _hyperdial_v1_TrialStateCounts, TrialStateCounts__Output as _hyperdial_v1_TrialStateCounts__Output } from './hyperdial/v1/TrialStateCounts';
import type { TrialStop as _hyperdial_v1_TrialStop, TrialStop__Output as _hyperdial_v1_TrialStop__Output } from './hyperdial/v1/TrialStop';
import type { TuningServiceClient as _hyperdial_v1_TuningServiceClient, TuningServiceDefinition as _hyperdial_v1_TuningServiceDefinition } from './hyperdial/v1/TuningService';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      Duration: MessageTypeDefinition<_google_protobuf_Duration, _google_protobuf_Duration__Output>
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
    }
  }
  hyperdial: {
    v1: {
      AddTrialMeasurementRequest: MessageTypeDefinition<_hyperdial_v1_AddTrialMeasurementRequest, _hyperdial_v1_AddTrialMeasurementRequest__Output>
      AddTrialMeasurementResponse: MessageTypeDefinition<_hyperdial_v1_AddTrialMeasurementResponse, _hyperdial_v1_AddTrialMeasurementResponse__Output>
      Algorithm: EnumTypeDefinition
      CategoricalDomain: MessageTypeDefinition<_hyperdial_v1_CategoricalDomain, _hyperdial_v1_CategoricalDomain__Output>
      CheckTrialEarlyStoppingRequest: MessageTypeDefinition<_hyperdial_v1_CheckTrialEarlyStoppingRequest, _hyperdial_v1_CheckTrialEarlyStoppingRequest__Output>
      CheckTrialEarlyStoppingResponse: MessageTypeDefinition<_hyperdial_v1_CheckTrialEarlyStoppingResponse, _hyperdial_v1_CheckTrialEarlyStoppingResponse__Output>
      CompleteTrialRequest: MessageTypeDefinition<_hyperdial_v1_CompleteTrialRequest, _hyperdial_v1_CompleteTrialRequest__Output>
      CompleteTrialResponse: MessageTypeDefinition<_hyperdial_v1_CompleteTrialResponse, _hyperdial_v1_CompleteTrialResponse__Output>
      ComputeParameterImportanceRequest: MessageTypeDefinition<_hyperdial_v1_ComputeParameterImportanceRequest, _hyperdial_v1_ComputeParameterImportanceRequest__Output>
      ComputeParameterImportanceResponse: MessageTypeDefinition<_hyperdial_v1_ComputeParameterImportanceResponse, _hyperdial_v1_ComputeParameterImportanceResponse__Output>
      CreateStudyRequest: MessageTypeDefinition<_hyperdial_v1_CreateStudyRequest, _hyperdial_v1_CreateStudyRequest__Output>
      CreateStudyResponse: MessageTypeDefinition<_hyperdial_v1_CreateStudyResponse, _hyperdial_v1_CreateStudyResponse__Output>
      CreateTrialRequest: MessageTypeDefinition<_hyperdial_v1_CreateTrialRequest, _hyperdial_v1_CreateTrialRequest__Output>
      CreateTrialResponse: MessageTypeDefinition<_hyperdial_v1_CreateTrialResponse, _hyperdial_v1_CreateTrialResponse__Output>
      DeleteStudyRequest: MessageTypeDefinition<_hyperdial_v1_DeleteStudyRequest, _hyperdial_v1_DeleteStudyRequest__Output>
      DeleteStudyResponse: MessageTypeDefinition<_hyperdial_v1_DeleteStudyResponse, _hyperdial_v1_DeleteStudyResponse__Output>
      DiscreteDomain: MessageTypeDefinition<_hyperdial_v1_DiscreteDomain, _hyperdial_v1_DiscreteDomain__Output>
      EarlyStoppingDecision: MessageTypeDefinition<_hyperdial_v1_EarlyStoppingDecision, _hyperdial_v1_EarlyStoppingDecision__Output>
      EarlyStoppingPolicy: MessageTypeDefinition<_hyperdial_v1_EarlyStoppingPolicy, _hyperdial_v1_EarlyStoppingPolicy__Output>
      FloatDomain: MessageTypeDefinition<_hyperdial_v1_FloatDomain, _hyperdial_v1_FloatDomain__Output>
      GetStudyRequest: MessageTypeDefinition<_hyperdial_v1_GetStudyRequest, _hyperdial_v1_GetStudyRequest__Output>
      GetStudyResponse: MessageTypeDefinition<_hyperdial_v1_GetStudyResponse, _hyperdial_v1_GetStudyResponse__Output>
      GetTrialRequest: MessageTypeDefinition<_hyperdial_v1_GetTrialRequest, _hyperdial_v1_GetTrialRequest__Output>
      GetTrialResponse: MessageTypeDefinition<_hyperdial_v1_GetTrialResponse, _hyperdial_v1_GetTrialResponse__Output>
      Goal: EnumTypeDefinition
      HeartbeatTrialRequest: MessageTypeDefinition<_hyperdial_v1_HeartbeatTrialRequest, _hyperdial_v1_HeartbeatTrialRequest__Output>
      HeartbeatTrialResponse: MessageTypeDefinition<_hyperdial_v1_HeartbeatTrialResponse, _hyperdial_v1_HeartbeatTrialResponse__Output>
      HyperbandRule: MessageTypeDefinition<_hyperdial_v1_HyperbandRule, _hyperdial_v1_HyperbandRule__Output>
      IntDomain: MessageTypeDefinition<_hyperdial_v1_IntDomain, _hyperdial_v1_IntDomain__Output>
      ListOptimalTrialsRequest: MessageTypeDefinition<_hyperdial_v1_ListOptimalTrialsRequest, _hyperdial_v1_ListOptimalTrialsRequest__Output>
      ListOptimalTrialsResponse: MessageTypeDefinition<_hyperdial_v1_ListOptimalTrialsResponse, _hyperdial_v1_ListOptimalTrialsResponse__Output>
      ListStudiesRequest: MessageTypeDefinition<_hyperdial_v1_ListStudiesRequest, _hyperdial_v1_ListStudiesRequest__Output>
      ListStudiesResponse: MessageTypeDefinition<_hyperdial_v1_ListStudiesResponse, _hyperdial_v1_ListStudiesResponse__Output>
      ListTrialsRequest: MessageTypeDefinition<_hyperdial_v1_ListTrialsRequest, _hyperdial_v1_ListTrialsRequest__Output>
      ListTrialsResponse: MessageTypeDefinition<_hyperdial_v1_ListTrialsResponse, _hyperdial_v1_ListTrialsResponse__Output>
      Measurement: MessageTypeDefinition<_hyperdial_v1_Measurement, _hyperdial_v1_Measurement__Output>
      MedianStoppingRule: MessageTypeDefinition<_hyperdial_v1_MedianStoppingRule, _hyperdial_v1_MedianStoppingRule__Output>
      ObjectiveSpec: MessageTypeDefinition<_hyperdial_v1_ObjectiveSpec, _hyperdial_v1_ObjectiveSpec__Output>
      OptimalityBasis: EnumTypeDefinition
      OutcomeConstraint: MessageTypeDefinition<_hyperdial_v1_OutcomeConstraint, _hyperdial_v1_OutcomeConstraint__Output>
      ParameterImportance: MessageTypeDefinition<_hyperdial_v1_ParameterImportance, _hyperdial_v1_ParameterImportance__Output>
      ParameterSpec: MessageTypeDefinition<_hyperdial_v1_ParameterSpec, _hyperdial_v1_ParameterSpec__Output>
      ParameterValue: MessageTypeDefinition<_hyperdial_v1_ParameterValue, _hyperdial_v1_ParameterValue__Output>
      ParentCondition: MessageTypeDefinition<_hyperdial_v1_ParentCondition, _hyperdial_v1_ParentCondition__Output>
      PercentileStoppingRule: MessageTypeDefinition<_hyperdial_v1_PercentileStoppingRule, _hyperdial_v1_PercentileStoppingRule__Output>
      Scale: EnumTypeDefinition
      Study: MessageTypeDefinition<_hyperdial_v1_Study, _hyperdial_v1_Study__Output>
      StudySpec: MessageTypeDefinition<_hyperdial_v1_StudySpec, _hyperdial_v1_StudySpec__Output>
      SuccessiveHalvingRule: MessageTypeDefinition<_hyperdial_v1_SuccessiveHalvingRule, _hyperdial_v1_SuccessiveHalvingRule__Output>
      SuggestTrialsRequest: MessageTypeDefinition<_hyperdial_v1_SuggestTrialsRequest, _hyperdial_v1_SuggestTrialsRequest__Output>
      SuggestTrialsResponse: MessageTypeDefinition<_hyperdial_v1_SuggestTrialsResponse, _hyperdial_v1_SuggestTrialsResponse__Output>
      ThresholdStoppingRule: MessageTypeDefinition<_hyperdial_v1_ThresholdStoppingRule, _hyperdial_v1_ThresholdStoppingRule__Output>
      Trial: MessageTypeDefinition<_hyperdial_v1_Trial, _hyperdial_v1_Trial__Output>
      TrialFailure: MessageTypeDefinition<_hyperdial_v1_TrialFailure, _hyperdial_v1_TrialFailure__Output>
      TrialInfeasibility: MessageTypeDefinition<_hyperdial_v1_TrialInfeasibility, _hyperdial_v1_TrialInfeasibility__Output>
      TrialPrediction: MessageTypeDefinition<_hyperdial_v1_TrialPrediction, _hyperdial_v1_TrialPrediction__Output>
      TrialState: EnumTypeDefinition
      TrialStateCounts: MessageTypeDefinition<_hyperdial_v1_TrialStateCounts, _hyperdial_v1_TrialStateCounts__Output>
      TrialStop: MessageTypeDefinition<_hyperdial_v1_TrialStop, _hyperdial_v1_TrialStop__Output>
      TrialView: EnumTypeDefinition
      /**
       * Hyperparameter tuning: a worker asks which parameters to try next (`SuggestTrials`),
       * runs its training job and tells the result (`CompleteTrial`).
       * 
       * Errors carry a `google.rpc.Status` with a `google.rpc.ErrorInfo` whose `reason` is a stable
       * token (for example `STUDY_NOT_FOUND`, `STUDY_COMPLETE`) and whose `domain` is `hyperdial.dev`.
       */
      TuningService: SubtypeConstructor<typeof grpc.Client, _hyperdial_v1_TuningServiceClient> & { service: _hyperdial_v1_TuningServiceDefinition }
    }
  }
}

