"""The Redis work of an ask and a tell, counted through the real server, does not grow with
the number of trials in the study (counted, not timed: INFO commandstats on a private Redis)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import redis

from hyperdial.v1 import study_pb2, trial_pb2, tuning_service_pb2_grpc
from hyperdial.v1 import tuning_service_pb2 as ts
from hyperdial_server.service._reservations import BLOCK
from tests.counting import commands, quiet_server
from tests.e2e.protocol import (
    ask,
    cat_param,
    create,
    float_param,
    int_param,
    measurement,
    pvalue,
    spec,
    tell,
)
from tests.redis_server import RedisServer


@pytest.fixture(scope="module")
def private() -> Iterator[tuple[redis.Redis, tuning_service_pb2_grpc.TuningServiceStub]]:
    server = RedisServer().start()
    try:  # on every path, the redis-server too (e.g. the gRPC server fails to start)
        with quiet_server(server.url) as served:
            yield served
    finally:
        server.close()


def _ask_tell_cost(
    client: redis.Redis, stub: tuning_service_pb2_grpc.TuningServiceStub, study: str
) -> dict[str, int]:
    client.config_resetstat()
    (trial,) = ask(stub, study)
    tell(stub, trial.name, loss=1.0)
    return commands(client)


@pytest.mark.parametrize(
    "algorithm",
    [study_pb2.ALGORITHM_RANDOM, study_pb2.ALGORITHM_GRID, study_pb2.ALGORITHM_QUASI_RANDOM],
)
def test_commands_per_ask_and_tell_do_not_grow_with_the_study(
    private: tuple[redis.Redis, tuning_service_pb2_grpc.TuningServiceStub], algorithm: int
) -> None:
    client, stub = private
    params = [float_param("x", 0, 1), int_param("n", 1, 100), cat_param("c", ["a", "b", "c"])]
    s = spec(*params, algorithm=algorithm, grid_resolution=100)
    name = study_pb2.Algorithm.Name(algorithm).lower().replace("_", "-")
    small, big = f"small-{name}", f"big-{name}"
    create(stub, small, s)
    create(stub, big, s)
    for _ in range(10):
        (t,) = ask(stub, small)
        tell(stub, t.name, loss=0.5)
    for _ in range(50):  # 5,000 trials, half of them completed
        for t in ask(stub, big, count=100)[::2]:
            tell(stub, t.name, loss=0.5)
    big_study = stub.GetStudy(ts.GetStudyRequest(name=f"studies/{big}")).study
    assert big_study.trial_count == 5000
    # Warm: the first call of a replica loads scripts and caches the spec.
    _ask_tell_cost(client, stub, small)
    _ask_tell_cost(client, stub, big)
    cost_small = _ask_tell_cost(client, stub, small)
    cost_big = _ask_tell_cost(client, stub, big)
    assert cost_small == cost_big
    round_trips = cost_small.get("cmdstat_evalsha", 0)
    if algorithm == study_pb2.ALGORITHM_RANDOM:
        # One step from a reserved index for the ask (the block lasts), complete for the tell.
        assert round_trips == 2, cost_small
    else:
        assert round_trips == 3, cost_small  # claim + commit for the ask, complete for the tell
    assert sum(cost_small.values()) <= 40, cost_small


def test_a_random_ask_is_one_script_call_and_the_replica_reserves_a_block_per_64_asks(
    private: tuple[redis.Redis, tuning_service_pb2_grpc.TuningServiceStub],
) -> None:
    client, stub = private
    create(stub, "reserving", spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM))
    client.config_resetstat()
    for _ in range(BLOCK):
        (t,) = ask(stub, "reserving")
        tell(stub, t.name, loss=0.5)
    scripts = commands(client)["cmdstat_evalsha"]
    assert scripts == 2 * BLOCK + 1  # one ask, one tell, and one reservation of BLOCK indices
    client.config_resetstat()
    (t,) = ask(stub, "reserving")  # the block is used up: reserves the next one
    assert commands(client)["cmdstat_evalsha"] == 2
    assert client.hget("hd:{default/reserving}:study", "next_index") == str(2 * BLOCK).encode()


def test_a_read_of_changes_costs_the_same_in_a_study_of_10_and_of_5000_trials(
    private: tuple[redis.Redis, tuning_service_pb2_grpc.TuningServiceStub],
) -> None:
    client, stub = private
    s = spec(float_param("x", 0, 1), algorithm=study_pb2.ALGORITHM_RANDOM)
    costs = {}
    for name, size in (("changes-small", 10), ("changes-big", 5000)):
        create(stub, name, s)
        for first in range(0, size, 100):
            ask(stub, name, count=min(100, size - first))
        parent = f"studies/{name}"
        since = stub.GetStudy(ts.GetStudyRequest(name=parent)).study.revision
        assert since == size
        # A few changes since: a result, a heartbeat, another result.
        tell(stub, f"{parent}/trials/7", loss=0.5)
        stub.HeartbeatTrial(ts.HeartbeatTrialRequest(name=f"{parent}/trials/2"))
        tell(stub, f"{parent}/trials/9", loss=0.5)
        request = ts.ListTrialsRequest(parent=parent, changed_after_revision=since)
        stub.ListTrials(request)  # warm: the script loaded, the spec cached
        client.config_resetstat()
        response = stub.ListTrials(request)
        costs[name] = commands(client)
        assert [t.number for t in response.trials] == [7, 2, 9]
        assert response.revision == since + 3 and not response.next_page_token
    assert costs["changes-small"] == costs["changes-big"]
    # One script call: the lazy expiry, the range of changes, the trials and their leases.
    assert costs["changes-small"].get("cmdstat_evalsha") == 1, costs["changes-small"]
    assert sum(costs["changes-small"].values()) <= 12, costs["changes-small"]


def _import(stub: tuning_service_pb2_grpc.TuningServiceStub, study: str, n: int) -> None:
    """``n`` completed trials of random points, told in one call each (``CreateTrial``)."""
    rng = random.Random(n)
    for _ in range(n):
        x, y = rng.random(), rng.random()
        stub.CreateTrial(
            ts.CreateTrialRequest(
                parent=f"studies/{study}",
                parameters={"x": pvalue(x), "y": pvalue(y)},
                final_measurement=measurement(loss=(x - 0.3) ** 2 + (y - 0.6) ** 2),
            )
        )


#: Two BAYESIAN studies of the same shape, of 500 and 3,000 completed trials: past the whole
#: history a model reads (300 trials) both, one six times the other.
LONG = {"bayes-small": 500, "bayes-big": 3000}


@pytest.fixture(scope="module")
def long_studies(
    private: tuple[redis.Redis, tuning_service_pb2_grpc.TuningServiceStub],
) -> tuple[redis.Redis, tuning_service_pb2_grpc.TuningServiceStub]:
    client, stub = private
    s = spec(float_param("x", 0, 1), float_param("y", 0, 1), algorithm=study_pb2.ALGORITHM_BAYESIAN)
    for study, size in LONG.items():
        create(stub, study, s)
        _import(stub, study, size)
    return client, stub


def test_a_bayesian_ask_reads_as_much_at_3000_trials_as_at_500(
    long_studies: tuple[redis.Redis, tuning_service_pb2_grpc.TuningServiceStub],
) -> None:
    client, stub = long_studies
    sizes = LONG
    costs: dict[str, dict[str, int]] = {}
    sent: dict[str, int] = {}
    for study in [*sizes, *sizes]:  # the first round warms: scripts loaded, workers started
        costs[study] = _ask_tell_cost(client, stub, study)
        # Since the reset of the statistics: the ask, the tell and one INFO reply.
        sent[study] = int(client.info("stats")["total_net_output_bytes"])
    assert costs["bayes-small"] == costs["bayes-big"]
    # Claim, the history, commit for the ask; complete for the tell.
    assert costs["bayes-small"].get("cmdstat_evalsha") == 4, costs["bayes-small"]
    # What Redis sent (the trials read, mostly) does not grow with the study either: the
    # best 150 and the 150 changed last of each. Byte counts, not times: the trials of both
    # studies are of the same shape, so only their number could make a difference.
    assert sent["bayes-big"] < 1.2 * sent["bayes-small"], sent
    assert sent["bayes-small"] > 300 * 100, sent  # the history was read: 300 trials


def test_a_recommendation_reads_as_much_at_3000_trials_as_at_500(
    long_studies: tuple[redis.Redis, tuning_service_pb2_grpc.TuningServiceStub],
) -> None:
    client, stub = long_studies
    costs: dict[str, dict[str, int]] = {}
    sent: dict[str, int] = {}
    for study in [*LONG, *LONG]:  # the first round warms
        client.config_resetstat()
        answer = stub.ListOptimalTrials(
            ts.ListOptimalTrialsRequest(parent=f"studies/{study}", basis=ts.OPTIMALITY_BASIS_MODEL)
        )
        costs[study] = commands(client)
        sent[study] = int(client.info("stats")["total_net_output_bytes"])
        assert len(answer.trials) == 1 and len(answer.predictions) == 1, answer
    assert costs["bayes-small"] == costs["bayes-big"]
    assert costs["bayes-small"].get("cmdstat_evalsha") == 1, costs["bayes-small"]
    # The best 150 and the 150 changed last, not every completed trial.
    assert sent["bayes-big"] < 1.2 * sent["bayes-small"], sent
    assert sent["bayes-small"] > 300 * 100, sent


#: Trials in the two studies of each policy below: past the whole history a model reads
#: (the best and the changed last) both, one four times the other.
STOPPING = {"small": 320, "big": 1280}
#: A policy of each kind that records values for the model: at rungs, at steps.
POLICIES = {
    "halving": study_pb2.EarlyStoppingPolicy(
        successive_halving=study_pb2.SuccessiveHalvingRule(
            min_resource=1, reduction_factor=3, max_resource=9
        )
    ),
    "median": study_pb2.EarlyStoppingPolicy(median=study_pb2.MedianStoppingRule(warmup_steps=1)),
}


def _import_reported(stub: tuning_service_pb2_grpc.TuningServiceStub, study: str, n: int) -> None:
    """``n`` trials of random points, each enqueued (``CreateTrial``), handed out by a
    ``SuggestTrials`` of the queue (no sampling), reported at step 2 (past the first rung and
    the median's warm-up: the policy records the value) and completed if the rule lets it
    continue. Each trial's loss is worse than every earlier one's, so that the first continues
    and the others stop, the best trials and the ones changed last are apart, and the history
    the model reads is as long in both studies."""
    rng = random.Random(n)
    parent = f"studies/{study}"
    for first in range(0, n, 100):
        count = min(100, n - first)
        # Enqueued at once (the order of the points does not matter); reported one at a time.
        created = [
            stub.CreateTrial.future(
                ts.CreateTrialRequest(
                    parent=parent, parameters={"x": pvalue(rng.random()), "y": pvalue(rng.random())}
                )
            )
            for _ in range(count)
        ]
        for future in created:
            future.result()
        for trial in ask(stub, study, count=count):
            loss = float(trial.number)
            point = trial_pb2.Measurement(step=2, values={"loss": loss})
            answer = stub.AddTrialMeasurement(
                ts.AddTrialMeasurementRequest(name=trial.name, measurement=point)
            )
            if not answer.decision.should_stop:
                tell(stub, trial.name, loss=loss)


@pytest.mark.parametrize("policy", list(POLICIES))
def test_a_bayesian_ask_under_early_stopping_reads_as_much_at_1280_trials_as_at_320(
    private: tuple[redis.Redis, tuning_service_pb2_grpc.TuningServiceStub], policy: str
) -> None:
    client, stub = private
    s = spec(
        float_param("x", 0, 1),
        float_param("y", 0, 1),
        algorithm=study_pb2.ALGORITHM_BAYESIAN,
        early_stopping=POLICIES[policy],
    )
    studies = {f"{policy}-{size}": n for size, n in STOPPING.items()}
    for study, n in studies.items():
        create(stub, study, s)
        _import_reported(stub, study, n)
    small, big = studies
    # Every trial recorded its value (at rung 0; at step 2), and all but the first stopped.
    values = "es_rungs" if policy == "halving" else "es_steps"
    assert client.zcard(f"hd:{{default/{big}}}:{values}") == STOPPING["big"]
    assert client.zcard(f"hd:{{default/{big}}}:state:STOPPED") == STOPPING["big"] - 1
    costs: dict[str, dict[str, int]] = {}
    sent: dict[str, int] = {}
    for study in [*studies, *studies]:  # the first round warms
        client.config_resetstat()
        (trial,) = ask(stub, study)
        sent[study] = int(client.info("stats")["total_net_output_bytes"])
        costs[study] = commands(client)
        tell(stub, trial.name, loss=1.0)
    assert costs[small] == costs[big]
    # Claim, the history, the recorded values of its trials, commit.
    assert costs[small].get("cmdstat_evalsha") == 4, costs[small]
    # The values of the 151 trials the model reads (the completed one and the 150 changed
    # last), not of all 1,280: each about 40 bytes, every value of the big study would add
    # some 50 KiB to about 35.
    assert sent[big] < 1.1 * sent[small], sent
    assert sent[small] > 150 * 100, sent
