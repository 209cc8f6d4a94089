"""Hostile input: property-based fuzzing of every RPC through a real server process on Redis.

Random and malformed messages (random field values, huge and unicode strings, deep and cyclic
conditional trees, NaN and infinities, extreme counts, raw bytes that are no message at all,
messages at and over the size limit) must never get INTERNAL or UNKNOWN; every refusal carries
an ErrorInfo reason; the server stays healthy; and the studies touched stay consistent in Redis.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import redis
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from tests.e2e.protocol import (
    cat_param,
    create,
    disc_param,
    error_reason,
    float_param,
    int_param,
    spec,
    when,
)
from tests.reliability.consistency import check_study, study_ids
from tests.reliability.fleet import replicas, server_log

pytestmark = pytest.mark.slow

RUN = uuid.uuid4().hex[:6]
PREFIX = f"fz{RUN}"
#: Studies created before fuzzing, which asks, tells and reads aim at.
FIXED = [
    f"{PREFIX}-grid",
    f"{PREFIX}-random",
    f"{PREFIX}-sobol",
    f"{PREFIX}-lease",
    f"{PREFIX}-stop",
]
#: Ids the fuzzed CreateStudy and DeleteStudy calls use (never the fixed ones).
FREE = [f"{PREFIX}-new{i}" for i in range(40)]
NAMES = ["x", "n", "c", "d", "a", "b", "loss", "acc", ""]
BAD_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
#: Cases run, by RPC and status code, printed at the end of the module.
SEEN: Counter[str] = Counter()

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
    ],
    database=None,
)


# --- strategies ------------------------------------------------------------------------------

huge_text = st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(129, 70_000))
texts = st.one_of(
    st.sampled_from(NAMES),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
    huge_text,
)
doubles = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, float("nan")]),
)
int64 = st.integers(-(2**63), 2**63 - 1)
int32 = st.integers(-(2**31), 2**31 - 1)
study_ids_any = st.one_of(
    st.sampled_from(FIXED + FREE),
    st.text(max_size=20),
    st.sampled_from(["", "a/b", "{x}", "..", "-x", "x" * 129, "ünï", "a b"]),
)


def names_of(ids: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(ids.map(lambda i: f"studies/{i}"), st.text(max_size=60))


def trial_names() -> st.SearchStrategy[str]:
    numbers = st.one_of(
        st.integers(1, 40).map(str),
        st.integers(-5, 10**20).map(str),
        st.sampled_from(["0", "01", "1e3", "x", ""]),
    )
    return st.one_of(
        st.builds(lambda s, n: f"studies/{s}/trials/{n}", st.sampled_from(FIXED + FREE), numbers),
        st.text(max_size=60),
    )


pvalues = st.one_of(
    st.builds(study_pb2.ParameterValue, double_value=doubles),
    st.builds(study_pb2.ParameterValue, int_value=int64),
    st.builds(study_pb2.ParameterValue, string_value=texts),
    st.just(study_pb2.ParameterValue()),
)


@st.composite
def parameter(draw: st.DrawFn, names: list[str]) -> study_pb2.ParameterSpec:
    p = study_pb2.ParameterSpec(name=draw(st.one_of(st.sampled_from(names), texts)))
    kind = draw(st.sampled_from(["float", "int", "cat", "disc", "none"]))
    scale = draw(st.sampled_from([0, 1, 2, 3, -1]))
    if kind == "float":
        p.float_domain.CopyFrom(study_pb2.FloatDomain(min=draw(doubles), max=draw(doubles)))
        p.float_domain.scale = scale  # type: ignore[assignment]
    elif kind == "int":
        p.int_domain.CopyFrom(study_pb2.IntDomain(min=draw(int64), max=draw(int64)))
        p.int_domain.scale = scale  # type: ignore[assignment]
    elif kind == "cat":
        values = draw(st.lists(texts, max_size=6) | st.just([str(i) for i in range(1001)]))
        p.categorical_domain.values.extend(values)
    elif kind == "disc":
        p.discrete_domain.values.extend(draw(st.lists(doubles, max_size=6)))
    if draw(st.booleans()):
        p.condition.parent = draw(st.one_of(st.sampled_from(names), texts))
        p.condition.values.extend(draw(st.lists(pvalues, max_size=4)))
    return p


@st.composite
def chain(draw: st.DrawFn) -> list[study_pb2.ParameterSpec]:
    """A conditional chain, deeper than the limit or closed into a cycle."""
    depth = draw(st.integers(1, 14))
    out = [cat_param("p0", ["on", "off"])]
    for i in range(1, depth):
        out.append(cat_param(f"p{i}", ["on", "off"], condition=when(f"p{i - 1}", "on")))
    if draw(st.booleans()):  # close the loop
        out[0].condition.CopyFrom(when(f"p{depth - 1}", "on"))
    return out


steps = st.one_of(st.integers(-2, 12), int64)
small_ints = st.one_of(st.integers(-2, 12), int32)


@st.composite
def policies(draw: st.DrawFn) -> study_pb2.EarlyStoppingPolicy:
    """Early-stopping policies, legal or not: every rule, fields anywhere in their type."""
    rule = draw(
        st.sampled_from(["median", "percentile", "halving", "hyperband", "threshold", None])
    )
    p = study_pb2.EarlyStoppingPolicy(
        objective=draw(st.one_of(st.just(""), st.sampled_from(NAMES), texts)),
        max_measurements_per_trial=draw(st.one_of(st.integers(-1, 3), int32)),
        rank_stopped_trials=draw(st.booleans()),
    )
    if rule == "median":
        p.median.CopyFrom(
            study_pb2.MedianStoppingRule(
                warmup_steps=draw(steps), min_trials=draw(small_ints), interval_steps=draw(steps)
            )
        )
    elif rule == "percentile":
        p.percentile.CopyFrom(
            study_pb2.PercentileStoppingRule(
                percentile=draw(doubles),
                warmup_steps=draw(steps),
                min_trials=draw(small_ints),
                interval_steps=draw(steps),
            )
        )
    elif rule == "halving":
        p.successive_halving.CopyFrom(
            study_pb2.SuccessiveHalvingRule(
                min_resource=draw(steps),
                reduction_factor=draw(small_ints),
                min_early_stopping_rate=draw(st.one_of(st.integers(-1, 31), int32)),
                max_resource=draw(steps),
            )
        )
    elif rule == "hyperband":
        p.hyperband.CopyFrom(
            study_pb2.HyperbandRule(
                min_resource=draw(steps),
                max_resource=draw(st.one_of(steps, st.integers(0, 10**6))),
                reduction_factor=draw(small_ints),
            )
        )
    elif rule == "threshold":
        threshold = study_pb2.ThresholdStoppingRule(
            warmup_steps=draw(steps), patience_steps=draw(steps), min_delta=draw(doubles)
        )
        if draw(st.booleans()):
            threshold.threshold = draw(doubles)
        p.threshold.CopyFrom(threshold)
    return p


@st.composite
def specs(draw: st.DrawFn) -> study_pb2.StudySpec:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    params = draw(
        st.one_of(
            st.lists(parameter(names), max_size=6),
            chain(),
            st.just([float_param(f"f{i}", 0, 1) for i in range(101)]),
            st.just([float_param("x", 0, 1), int_param("n", 1, 5), cat_param("c", ["a", "b"])]),
        )
    )
    s = study_pb2.StudySpec(parameters=params)
    objectives = draw(
        st.lists(
            st.builds(study_pb2.ObjectiveSpec, name=texts, goal=st.sampled_from([0, 1, 2, 3, -7])),
            max_size=3,
        )
        | st.just([study_pb2.ObjectiveSpec(name="loss", goal=study_pb2.GOAL_MINIMIZE)])
    )
    s.objectives.extend(objectives)
    s.algorithm = draw(st.sampled_from([0, 1, 2, 3, 4, 5, -1]))  # type: ignore[assignment]
    if draw(st.booleans()):
        s.seed = draw(int64)
    s.max_trials = draw(st.one_of(int32, st.integers(0, 20)))
    s.grid_resolution = draw(st.one_of(int32, st.integers(0, 5)))
    s.initial_trials = draw(st.one_of(int32, st.integers(0, 5)))
    if draw(st.booleans()):
        s.early_stopping.CopyFrom(draw(policies()))
    if draw(st.booleans()):
        s.lease_timeout.CopyFrom(
            Duration(
                seconds=draw(st.one_of(st.integers(-10, 10**6), int64)),
                nanos=draw(st.one_of(st.integers(0, 999_999_999), int32)),
            )
        )
    return s


printable = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")),
    min_size=1,
    max_size=128,
).filter(str.isprintable)
finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def valid_specs(draw: st.DrawFn) -> study_pb2.StudySpec:
    """Specs the service takes, with extreme but legal values: unicode names, bounds near the
    largest doubles and int64s, one-value domains, conditions."""
    names = draw(st.lists(printable, min_size=1, max_size=5, unique=True))
    params = []
    for name in names:
        kind = draw(st.sampled_from(["float", "log", "int", "cat", "disc"]))
        if kind == "float":
            low = draw(st.floats(-1e308, 1e308))
            high = low + draw(st.floats(1e-300, 1e308))
            if not (high > low and high < float("inf")):
                high = low + abs(low) * 1e-12 + 1e-300
            params.append(float_param(name, low, high))
        elif kind == "log":
            low = draw(st.floats(5e-324, 1e300))
            params.append(float_param(name, low, low * draw(st.floats(1.0001, 1e8)), log=True))
        elif kind == "int":
            low = draw(st.integers(-(2**62), 2**62))
            high = min(low + draw(st.integers(1, 2**62)), 2**63 - 1)
            params.append(int_param(name, low, high, log=low >= 1 and draw(st.booleans())))
        elif kind == "cat":
            values = draw(st.lists(printable, min_size=1, max_size=4, unique=True))
            params.append(cat_param(name, values))
        else:
            values = sorted(set(draw(st.lists(finite, min_size=1, max_size=4))))
            params.append(disc_param(name, values))
    cats = [p for p in params if p.HasField("categorical_domain")]
    if cats and draw(st.booleans()):
        parent = cats[0]
        child = float_param(f"{parent.name}/child", 0, 1)
        child.condition.CopyFrom(when(parent.name, parent.categorical_domain.values[0]))
        params.append(child)
    algorithm = draw(st.sampled_from([0, 1, 2, 3, 4]))
    return spec(
        *params,
        objectives=[study_pb2.ObjectiveSpec(name=draw(printable), goal=study_pb2.GOAL_MAXIMIZE)],
        algorithm=algorithm,
        grid_resolution=draw(st.integers(2, 4)),
        max_trials=draw(st.integers(0, 30)),
        lease_timeout=Duration(seconds=draw(st.integers(1, 5))),
    )


metadata = st.one_of(
    st.dictionaries(texts, texts, max_size=4),
    st.just({f"k{i}": "v" for i in range(65)}),
    st.just({"k": "v" * 4097}),
    st.just({f"k{i}": "v" * 4000 for i in range(17)}),  # past 64 KiB in all
)
measurements = st.builds(
    trial_pb2.Measurement,
    values=st.dictionaries(st.one_of(st.sampled_from(NAMES), texts), doubles, max_size=3),
)
reports = st.builds(
    trial_pb2.Measurement,
    step=steps,
    values=st.dictionaries(st.one_of(st.sampled_from(NAMES), texts), doubles, max_size=3),
    elapsed_duration=st.one_of(
        st.none(),
        st.builds(Duration, seconds=st.one_of(st.integers(-1, 100), int64), nanos=int32),
    ),
)
views = st.one_of(st.integers(-1, 3), int32)
request_ids = st.one_of(
    st.just(""),
    st.sampled_from(["r1", "r2", "r3"]),  # reused across calls and kinds, on purpose
    st.text(max_size=130),
    st.just("\x00\x07"),
)


def requests() -> dict[str, st.SearchStrategy[Message]]:
    """A strategy of requests for every RPC of the service."""
    ask_parent = names_of(st.sampled_from(FIXED + FREE) | study_ids_any)
    return {
        "CreateStudy": st.builds(
            ts.CreateStudyRequest,
            study_id=st.one_of(st.sampled_from(FREE + FIXED[:1]), study_ids_any),
            spec=st.one_of(specs(), valid_specs()),
            request_id=request_ids,
        ),
        "GetStudy": st.builds(ts.GetStudyRequest, name=names_of(study_ids_any)),
        "ListStudies": st.builds(
            ts.ListStudiesRequest, page_size=int32, page_token=st.text(max_size=80)
        ),
        "DeleteStudy": st.builds(
            ts.DeleteStudyRequest,
            name=st.one_of(
                st.sampled_from(FREE).map(lambda i: f"studies/{i}"), st.text(max_size=40)
            ),
            request_id=request_ids,
        ),
        "SuggestTrials": st.builds(
            ts.SuggestTrialsRequest,
            parent=ask_parent,
            count=st.one_of(st.integers(-2, 101), int32),
            client_id=st.one_of(st.sampled_from(["", "w1", "w2"]), texts),
            request_id=request_ids,
        ),
        "CompleteTrial": st.one_of(
            st.builds(
                ts.CompleteTrialRequest,
                name=trial_names(),
                final_measurement=measurements,
                metadata=metadata,
                request_id=request_ids,
            ),
            st.builds(
                ts.CompleteTrialRequest,
                name=trial_names(),
                failure=st.builds(ts.TrialFailure, reason=texts),
                metadata=metadata,
                request_id=request_ids,
            ),
            st.builds(
                ts.CompleteTrialRequest,
                name=trial_names(),
                stop=st.builds(ts.TrialStop, reason=texts),
                request_id=request_ids,
            ),
            st.builds(ts.CompleteTrialRequest, name=trial_names()),
        ),
        "CreateTrial": st.builds(
            ts.CreateTrialRequest,
            parent=ask_parent,
            parameters=st.dictionaries(
                st.one_of(st.sampled_from(NAMES), texts), pvalues, max_size=4
            ),
            final_measurement=st.one_of(st.none(), measurements),
            metadata=metadata,
            request_id=request_ids,
        ),
        "GetTrial": st.builds(ts.GetTrialRequest, name=trial_names(), view=views),
        "HeartbeatTrial": st.builds(ts.HeartbeatTrialRequest, name=trial_names()),
        "ListTrials": st.builds(
            ts.ListTrialsRequest,
            parent=ask_parent,
            page_size=int32,
            page_token=st.text(max_size=80),
            states=st.lists(st.integers(-3, 7), max_size=5),
            view=views,
        ),
        "ListOptimalTrials": st.builds(ts.ListOptimalTrialsRequest, parent=ask_parent),
        "AddTrialMeasurement": st.one_of(
            st.builds(
                ts.AddTrialMeasurementRequest,
                name=trial_names(),
                measurement=st.one_of(st.none(), reports),
                request_id=request_ids,
            ),
            # Plausible reports of the RUNNING trials of the study with a policy: decisions,
            # stops, steps that go back, reports of stopped trials.
            st.builds(
                ts.AddTrialMeasurementRequest,
                name=st.integers(1, 30).map(lambda n: f"studies/{FIXED[4]}/trials/{n}"),
                measurement=st.builds(
                    trial_pb2.Measurement,
                    step=st.integers(0, 12),
                    values=st.fixed_dictionaries(
                        {"loss": st.one_of(finite, doubles)}, optional={"acc": finite}
                    ),
                ),
                request_id=st.one_of(st.just(""), st.sampled_from(["m1", "m2"])),
            ),
        ),
        "CheckTrialEarlyStopping": st.builds(ts.CheckTrialEarlyStoppingRequest, name=trial_names()),
        "ComputeParameterImportance": st.builds(
            ts.ComputeParameterImportanceRequest,
            parent=ask_parent,
            objective=st.one_of(st.just(""), st.sampled_from(["loss", "acc", "nope"]), st.text()),
        ),
    }


# --- the server --------------------------------------------------------------------------


class Target:
    """The fuzzed server: a raw stub, a channel for raw bytes, and the Redis behind it."""

    def __init__(self, target: str, redis_url: str) -> None:
        options = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
        self.channel = grpc.insecure_channel(target, options=options)
        self.stub = tuning_service_pb2_grpc.TuningServiceStub(self.channel)
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)

    def call(self, method: str, request: Message | bytes) -> None:
        """One call; fails the test on INTERNAL, UNKNOWN, or a refusal without a reason.

        The deadline only guards against a hang: a Bayesian ask of 100 points on a machine
        whose cores are busy with other work can take tens of seconds (the sampler's workers
        yield the CPU to normal-priority processes).
        """
        try:
            if isinstance(request, bytes):
                raw = self.channel.unary_unary(f"/hyperdial.v1.TuningService/{method}")
                raw(request, timeout=120)
            else:
                getattr(self.stub, method)(request, timeout=120)
            SEEN[f"{method} OK"] += 1
        except grpc.RpcError as e:
            code, reason, message = error_reason(e)
            SEEN[f"{method} {code.name}"] += 1
            assert code not in BAD_CODES, (method, code, message[:300])
            # The transport's own size refusal is the one answer without our ErrorInfo.
            if not (code is grpc.StatusCode.RESOURCE_EXHAUSTED and not reason):
                assert reason, (method, code, message[:300])


@pytest.fixture(scope="module")
def target(redis_url: str) -> Iterator[Target]:
    with replicas(1, redis_url, ["--lease-sweep-interval", "0.2"]) as (server,):
        t = Target(server.target, redis_url)
        create(
            t.stub,
            FIXED[0],
            spec(
                cat_param("c", ["a", "b", "ü"]),
                int_param("n", 1, 3),
                float_param("x", 0, 1, condition=when("c", "a")),
                algorithm=study_pb2.ALGORITHM_GRID,
                grid_resolution=3,
            ),
        )
        create(
            t.stub, FIXED[1], spec(float_param("x", 1e-5, 1, log=True), disc_param("d", [1.5, 2]))
        )
        create(
            t.stub,
            FIXED[2],
            spec(int_param("n", 1, 100), algorithm=study_pb2.ALGORITHM_QUASI_RANDOM, max_trials=50),
        )
        create(t.stub, FIXED[3], spec(float_param("x", 0, 1), lease_timeout=Duration(seconds=1)))
        # Reports aim at its RUNNING trials: a median rule on loss, a second objective acc.
        median = study_pb2.EarlyStoppingPolicy(median=study_pb2.MedianStoppingRule())
        objectives = [
            study_pb2.ObjectiveSpec(name="loss", goal=study_pb2.GOAL_MINIMIZE),
            study_pb2.ObjectiveSpec(name="acc", goal=study_pb2.GOAL_MAXIMIZE),
        ]
        stop_spec = spec(
            float_param("x", 0, 1),
            objectives=objectives,
            early_stopping=median,
            algorithm=study_pb2.ALGORITHM_RANDOM,
        )
        create(t.stub, FIXED[4], stop_spec)
        t.stub.SuggestTrials(ts.SuggestTrialsRequest(parent=f"studies/{FIXED[4]}", count=30))
        yield t
        # Healthy after all of it, and every fuzzed study consistent.
        health = health_pb2_grpc.HealthStub(t.channel)
        answer = health.Check(health_pb2.HealthCheckRequest(service="hyperdial.v1.TuningService"))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        assert server.proc.poll() is None
        log = server_log(server)
        assert "unexpected error" not in log and "Traceback" not in log
        t.channel.close()
        # Stopped before the check: its lease sweep would change the studies between the
        # check's reads (they are not one atomic snapshot).
        assert server.terminate() == 0
        fuzzed = study_ids(t.redis, "default", PREFIX)
        assert set(FIXED) <= set(fuzzed)
        problems = [p for sid in fuzzed for p in check_study(t.redis, "default", sid)]
        assert problems == []
        t.redis.close()
        total = sum(SEEN.values())
        print(f"\nfuzz: {total} calls over {len(fuzzed)} studies; {dict(sorted(SEEN.items()))}")


# --- the properties ------------------------------------------------------------------------


def fuzz(method: str, examples: int) -> Callable[[Target], None]:
    @settings(FUZZ, max_examples=examples)
    @given(request=requests()[method])
    def run(target: Target, request: Message) -> None:
        target.call(method, request)

    return run  # type: ignore[no-any-return]


test_create_study = fuzz("CreateStudy", 1000)
test_get_study = fuzz("GetStudy", 150)
test_list_studies = fuzz("ListStudies", 150)
test_delete_study = fuzz("DeleteStudy", 150)
test_suggest_trials = fuzz("SuggestTrials", 800)
test_complete_trial = fuzz("CompleteTrial", 800)
test_create_trial = fuzz("CreateTrial", 800)
test_get_trial = fuzz("GetTrial", 150)
test_heartbeat_trial = fuzz("HeartbeatTrial", 400)
test_list_trials = fuzz("ListTrials", 400)
test_list_optimal_trials = fuzz("ListOptimalTrials", 100)
test_add_trial_measurement = fuzz("AddTrialMeasurement", 600)
test_check_trial_early_stopping = fuzz("CheckTrialEarlyStopping", 100)
test_compute_parameter_importance = fuzz("ComputeParameterImportance", 100)


@settings(FUZZ, max_examples=300)
@given(
    method=st.sampled_from(sorted(requests())),
    payload=st.one_of(
        st.binary(max_size=512),
        st.builds(lambda b: b"\x0a" + b, st.binary(max_size=64)),  # a broken first field
        st.builds(lambda n: b"\x0a\x02\xff\xfe" * n, st.integers(1, 10)),  # bad UTF-8
    ),
)
def test_bytes_that_are_no_message(target: Target, method: str, payload: bytes) -> None:
    target.call(method, payload)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_ask_heartbeat_tell_sequences(target: Target, data: st.DataObject) -> None:
    """Valid and invalid steps interleaved on the fixed studies, as misbehaving workers would."""
    study = data.draw(st.sampled_from(FIXED))
    for _ in range(data.draw(st.integers(1, 6))):
        step = data.draw(st.sampled_from(["ask", "tell", "fail", "beat", "enqueue"]))
        number = data.draw(st.integers(1, 60))
        name = f"studies/{study}/trials/{number}"
        rid = data.draw(request_ids)
        if step == "ask":
            count = data.draw(st.integers(1, 100))
            client = data.draw(st.sampled_from(["", "w1", "w2"]))
            request: Message = ts.SuggestTrialsRequest(
                parent=f"studies/{study}", count=count, client_id=client, request_id=rid
            )
            target.call("SuggestTrials", request)
        elif step == "tell":
            values = {"loss": data.draw(doubles)}
            request = ts.CompleteTrialRequest(
                name=name, final_measurement=trial_pb2.Measurement(values=values), request_id=rid
            )
            target.call("CompleteTrial", request)
        elif step == "fail":
            request = ts.CompleteTrialRequest(
                name=name, failure=ts.TrialFailure(reason="oom"), request_id=rid
            )
            target.call("CompleteTrial", request)
        elif step == "beat":
            target.call("HeartbeatTrial", ts.HeartbeatTrialRequest(name=name))
        else:
            point = {"x": study_pb2.ParameterValue(double_value=data.draw(doubles))}
            request = ts.CreateTrialRequest(parent=f"studies/{study}", parameters=point)
            target.call("CreateTrial", request)


@pytest.mark.parametrize(
    ("method", "build"),
    [
        # Just under the 4 MiB limit: refused by the service's own limits.
        (
            "CreateTrial",
            lambda: ts.CreateTrialRequest(
                parent=f"studies/{FIXED[1]}", metadata={"k": "v" * (4 * 2**20 - 100)}
            ),
        ),
        (
            "CreateStudy",
            lambda: ts.CreateStudyRequest(
                study_id=FREE[0], spec=spec(cat_param("c", [str(i) * 3000 for i in range(1390)]))
            ),
        ),
        (
            "CompleteTrial",
            lambda: ts.CompleteTrialRequest(
                name=f"studies/{FIXED[1]}/trials/1",
                failure=ts.TrialFailure(reason="r" * (4 * 2**20 - 64)),
            ),
        ),
        # Over it: refused by the transport with RESOURCE_EXHAUSTED.
        (
            "CreateTrial",
            lambda: ts.CreateTrialRequest(
                parent=f"studies/{FIXED[1]}", metadata={"k": "v" * (4 * 2**20 + 1)}
            ),
        ),
        (
            "SuggestTrials",
            lambda: ts.SuggestTrialsRequest(
                parent=f"studies/{FIXED[1]}", client_id="w" * (5 * 2**20)
            ),
        ),
        (
            "CreateStudy",
            lambda: ts.CreateStudyRequest(
                study_id=FREE[0], spec=spec(cat_param("c", ["v" * 1000] * 5000))
            ),
        ),
    ],
)
def test_messages_at_and_over_the_size_limit(
    target: Target, method: str, build: Callable[[], Any]
) -> None:
    request = build()
    size = request.ByteSize()
    assert abs(size - 4 * 2**20) < 2**20 or size > 4 * 2**20
    target.call(method, request)
