"""``Study.trials_dataframe()``: pandas is optional, never a dependency of the client."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import timedelta

import hyperdial as hd
from hyperdial._dataframe import PANDAS_MISSING
from hyperdial.aio import AsyncClient
from tests.client._support import blocked_python, new_id

SPACE = [
    hd.Int("layers", 1, 4),
    hd.Categorical("opt", ["adam", "sgd"]),
    hd.Float("momentum", 0.0, 1.0, when=("opt", ["sgd"])),
]


def test_without_pandas_the_message_says_what_to_install(server_target: str) -> None:
    body = """
        import json
        import hyperdial as hd

        with hd.Client(sys.argv[1]) as client:
            study = client.create_study(sys.argv[2], [hd.Int("n", 1, 3)], algorithm="grid")
            study.add_trial({"n": 1}, 1.0)
            try:
                study.trials_dataframe()
            except ImportError as e:
                print(json.dumps({"message": str(e), "name": e.name}))
    """
    result = blocked_python(body, server_target, new_id("df"), blocked=["pandas"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"message": PANDAS_MISSING, "name": "pandas"}
    assert "pip install pandas" in PANDAS_MISSING


def test_trials_dataframe(server_target: str) -> None:
    import pandas as pd

    with hd.Client(server_target) as client:
        study = client.create_study(new_id("df"), SPACE, algorithm="random")
        study.add_trial({"layers": 2, "opt": "adam"}, 0.5, metadata={"host": "a"})
        study.add_trial({"layers": 3, "opt": "sgd", "momentum": 0.9}, failure="diverged")
        study.ask()
        frame = study.trials_dataframe()
        completed = study.trials_dataframe(["COMPLETED"])

    assert list(frame.columns) == [
        "number",
        "state",
        "value",
        "params_layers",
        "params_opt",
        "params_momentum",
        "client_id",
        "failure_reason",
        "infeasible",
        "infeasibility_reason",
        "create_time",
        "complete_time",
        "duration",
        "original_number",
        "reissued_number",
        "measurement_count",
        "stop_rule",
        "stop_step",
        "metadata_host",
    ]
    assert list(frame["number"]) == [1, 2, 3]
    assert list(frame["state"]) == ["COMPLETED", "FAILED", "RUNNING"]
    assert frame.loc[0, "value"] == 0.5 and math.isnan(frame.loc[1, "value"])
    assert frame.loc[1, "params_momentum"] == 0.9 and math.isnan(frame.loc[0, "params_momentum"])
    assert frame.loc[1, "failure_reason"] == "diverged"
    assert list(frame["infeasible"]) == [False, False, False]
    assert list(frame["infeasibility_reason"]) == ["", "", ""]
    assert frame.loc[0, "metadata_host"] == "a"
    assert str(frame["create_time"].dt.tz) == "UTC"
    assert frame.loc[0, "duration"] >= timedelta(0) and pd.isna(frame.loc[2, "duration"])
    assert list(completed["number"]) == [1]
    # No twins here: nullable integers, all missing.
    assert str(frame["original_number"].dtype) == "Int64"
    assert frame["original_number"].isna().all() and frame["reissued_number"].isna().all()
    assert list(frame["measurement_count"]) == [0, 0, 0]
    assert frame["stop_rule"].isna().all() and str(frame["stop_step"].dtype) == "Int64"


def test_stopped_trials_in_the_dataframe(server_target: str) -> None:
    import pandas as pd

    with hd.Client(server_target) as client:
        study = client.create_study(
            new_id("df"), SPACE, early_stopping=hd.ThresholdStopping(threshold=1.0)
        )
        by_rule, by_worker, done = study.ask(3)
        by_rule.report(0.5, 1)
        assert by_rule.report(2.0, 4).should_stop
        by_worker.report(0.25, 2)
        by_worker.stop("enough")
        done.report(0.5, 1)
        done.report(0.125)
        frame = study.trials_dataframe()
        stopped = study.trials_dataframe(["STOPPED"])
    assert list(frame["state"]) == ["STOPPED", "STOPPED", "COMPLETED"]
    assert list(frame["value"]) == [2.0, 0.25, 0.125]  # a stopped trial's: its last report's
    assert list(frame["measurement_count"]) == [2, 1, 1]
    assert list(frame["stop_rule"][:2]) == ["threshold", "worker"]
    assert list(frame["stop_step"][:2]) == [4, 2] and str(frame["stop_step"].dtype) == "Int64"
    assert pd.isna(frame.loc[2, "stop_rule"]) and pd.isna(frame.loc[2, "stop_step"])
    assert list(stopped["number"]) == [1, 2]


def test_multi_objective_dataframe_from_the_async_client(server_target: str) -> None:
    async def main() -> object:
        async with AsyncClient(server_target) as client:
            study = await client.create_study(
                new_id("df"), SPACE, [hd.Objective("loss"), hd.Objective("acc", "maximize")]
            )
            await study.add_trial({"layers": 1, "opt": "adam"}, values={"loss": 1, "acc": 0.5})
            return await study.trials_dataframe()

    frame = asyncio.run(main())
    assert list(frame.columns[:4]) == ["number", "state", "values_loss", "values_acc"]  # type: ignore[attr-defined]
    assert frame.loc[0, "values_acc"] == 0.5  # type: ignore[attr-defined]


def test_constraints_and_feasibility_in_the_dataframe(server_target: str) -> None:
    with hd.Client(server_target) as client:
        study = client.create_study(
            new_id("df"),
            SPACE,
            [hd.Objective("loss"), hd.Objective("acc", "maximize")],
            constraints=["latency_ms <= 20", "0.1 <= sparsity <= 0.5"],
        )
        point = {"layers": 2, "opt": "adam"}
        within = {"latency_ms": 12.5, "sparsity": 0.25}
        study.add_trial(point, values={"loss": 1, "acc": 0.5}, constraint_values=within)
        study.add_trial(
            point, values={"loss": 0.5, "acc": 0.75, "latency_ms": 25.0, "sparsity": 0.3}
        )
        study.add_trial(point, infeasibility="out of memory")
        study.add_trial(point, failure="node lost")
        frame = study.trials_dataframe()
        infeasible = study.trials_dataframe(["INFEASIBLE"])

    assert list(frame.columns[:8]) == [
        "number",
        "state",
        "values_loss",
        "values_acc",
        "constraints_latency_ms",
        "constraints_sparsity",
        "params_layers",
        "params_opt",
    ]
    assert list(frame["state"]) == ["COMPLETED", "COMPLETED", "INFEASIBLE", "FAILED"]
    assert list(frame["constraints_latency_ms"][:2]) == [12.5, 25.0]
    assert list(frame["constraints_sparsity"][:2]) == [0.25, 0.3]
    assert frame["constraints_latency_ms"][2:].isna().all()
    # Feasibility: the service's judgement, for completed and INFEASIBLE trials alike.
    assert list(frame["infeasible"]) == [False, True, True, False]
    assert frame.loc[1, "infeasibility_reason"] == "latency_ms = 25 > 20 (upper bound)"
    assert frame.loc[2, "infeasibility_reason"] == "out of memory"
    assert frame.loc[2, "failure_reason"] == "" and frame.loc[3, "failure_reason"] == "node lost"
    assert frame.loc[3, "infeasibility_reason"] == ""
    assert list(infeasible["number"]) == [3]
