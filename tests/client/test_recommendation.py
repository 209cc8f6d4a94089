"""The recommendation in the Python client (``study.recommended_trial``,
``recommended_trials``, ``trial.prediction``), ``create_study(deterministic_objective=...)``,
and ``hyperdial best --by model`` / ``studies create --deterministic-objective``: each through
a real server, on the memory store and on Redis. Seeded data: the same answers on every run."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import numpy as np
import pytest

import hyperdial as hd
from hyperdial import cli
from hyperdial.aio import AsyncClient
from tests.client._support import new_id

SPACE = [hd.Float("x", 0.0, 1.0), hd.Float("y", 0.0, 1.0)]
#: The lucky point: truly mediocre, measured below everything else.
LUCKY = {"x": 0.7, "y": 0.3}


def _bowl(x: float, y: float) -> float:
    """The noise-free loss: lowest (0) at (0.4, 0.6)."""
    return (x - 0.4) ** 2 + (y - 0.6) ** 2


def _noisy_bowl(study: hd.Study) -> hd.Trial:
    """40 seeded random points measured with noise of sd 0.05, then one lucky measurement at
    ``LUCKY``, 0.01 below every other; returns the lucky trial."""
    rng = np.random.default_rng(2)
    points = [(float(rng.random()), float(rng.random())) for _ in range(40)]
    values = [_bowl(x, y) + float(rng.normal(0.0, 0.05)) for x, y in points]
    for (x, y), v in zip(points, values, strict=True):
        study.add_trial({"x": x, "y": y}, v)
    return study.add_trial(LUCKY, min(values) - 0.01)


def test_prediction_is_exported() -> None:
    assert "Prediction" in hd.__all__ and hd.Prediction.__module__ == "hyperdial._prediction"


def test_recommended_trial_is_the_truly_better_point_with_its_prediction(store_target: str) -> None:
    with hd.Client(store_target) as client:
        study = client.create_study(new_id("rec"), SPACE, algorithm="random", seed=1)
        with pytest.raises(ValueError, match="no trial of .* has completed yet"):
            _ = study.recommended_trial
        assert study.recommended_trials == []
        lucky = _noisy_bowl(study)
        best = study.best_trial
        assert best.number == lucky.number and best.prediction is None
        recommended = study.recommended_trial
        assert recommended.number != lucky.number
        x, y = float(recommended.params["x"]), float(recommended.params["y"])
        assert _bowl(x, y) < _bowl(*LUCKY.values()) / 2
        prediction = recommended.prediction
        assert isinstance(prediction, hd.Prediction)
        assert prediction.measurements == 1
        assert prediction.stddev["value"] > 0 and prediction.noise_stddev["value"] > 0.01
        assert prediction.value == prediction.mean["value"]
        assert [t.number for t in study.recommended_trials] == [recommended.number]
        # A snapshot of the trial all the same: equal to the trial as read, prediction aside.
        assert recommended == study.get_trial(recommended.number, with_measurements=False)


def test_repeated_add_trial_is_one_point_measured_several_times(store_target: str) -> None:
    """``add_trial`` of the same parameters five times (mean 0.10) against another point
    measured once at 0.09: the five win, as one point of 5 measurements."""
    walls = {0.0: 0.6, 0.1: 0.35, 0.2: 0.2, 0.4: 0.2, 0.5: 0.3, 0.6: 0.2, 0.8: 0.2, 0.9: 0.35}
    walls[1.0] = 0.6
    with hd.Client(store_target) as client:
        study = client.create_study(new_id("rec"), [hd.Float("x", 0.0, 1.0)], seed=1)
        for x, v in walls.items():
            study.add_trial({"x": x}, v)
        first = study.add_trial({"x": 0.3}, 0.05)
        study.add_trial({"x": 0.7}, 0.09)
        for v in (0.15, 0.10, 0.08, 0.12):
            study.add_trial({"x": 0.3}, v)
        recommended = study.recommended_trial
        assert recommended.number == first.number
        assert recommended.prediction is not None and recommended.prediction.measurements == 5
        assert study.best_trial.number == first.number  # 0.05: the lowest single result


def test_with_fewer_than_two_completed_trials_the_answer_has_no_prediction(
    store_target: str,
) -> None:
    with hd.Client(store_target) as client:
        study = client.create_study(new_id("rec"), SPACE, algorithm="random", seed=1)
        only = study.add_trial({"x": 0.5, "y": 0.5}, 1.0)
        study.add_trial({"x": 0.1, "y": 0.1}, failure="oom")
        recommended = study.recommended_trial
        assert recommended.number == only.number and recommended.prediction is None


def test_several_objectives(store_target: str) -> None:
    objectives = [hd.Objective("a"), hd.Objective("b", "maximize")]
    with hd.Client(store_target) as client:
        study = client.create_study(new_id("rec"), SPACE, objectives, seed=1)
        rng = np.random.default_rng(5)
        for _ in range(24):
            x, y = float(rng.random()), float(rng.random())
            a, b = x + 0.3 * (y - 0.5) ** 2, -((1 - x) ** 2) - 0.3 * (y - 0.5) ** 2
            study.add_trial({"x": x, "y": y}, values={"a": a, "b": b})
        with pytest.raises(ValueError, match="use recommended_trials for the Pareto front"):
            _ = study.recommended_trial
        front = study.recommended_trials
        assert len(front) >= 2
        for t in front:
            assert t.prediction is not None and set(t.prediction.mean) == {"a", "b"}
            assert t.prediction.value is None


def test_deterministic_objective_and_get_or_create(store_target: str) -> None:
    with hd.Client(store_target) as client:
        study_id = new_id("rec")
        study = client.create_study(
            study_id, SPACE, algorithm="random", seed=1, deterministic_objective=True
        )
        assert study.deterministic_objective and study.spec.deterministic_objective
        assert client.get_study(study_id).deterministic_objective
        again = client.create_study(
            study_id, SPACE, deterministic_objective=True, load_if_exists=True
        )
        assert again.deterministic_objective
        with pytest.raises(hd.StudySpecMismatchError) as e:
            client.create_study(study_id, SPACE, load_if_exists=True)
        assert "deterministic_objective: requested False, stored True" in e.value.message
        lucky = _noisy_bowl(study)
        # Declared deterministic: every result is the truth, and the best result is the best.
        recommended = study.recommended_trial
        assert recommended.number == lucky.number
        assert recommended.prediction is not None
        assert recommended.prediction.noise_stddev == {"value": 0.0}
        plain = client.create_study(new_id("rec"), SPACE)
        assert not plain.deterministic_objective


def test_the_asyncio_client(store_target: str) -> None:
    async def body() -> None:
        async with AsyncClient(store_target) as client:
            study = await client.create_study(
                new_id("rec"), SPACE, algorithm="quasi_random", seed=1
            )
            with pytest.raises(ValueError):
                await study.recommended_trial
            assert await study.recommended_trials == []
            points = [(0.1, 0.1), (0.4, 0.6), (0.4, 0.6), (0.9, 0.2), (0.5, 0.5)]
            for (x, y), v in zip(points, (0.4, 0.02, -0.02, 0.7, 0.05), strict=True):
                await study.add_trial({"x": x, "y": y}, v)
            recommended = await study.recommended_trial
            assert recommended.params == {"x": 0.4, "y": 0.6} and recommended.number == 2
            assert recommended.prediction is not None
            assert recommended.prediction.measurements == 2
            assert [t.number for t in await study.recommended_trials] == [2]
            assert (await study.best_trial).prediction is None
            declared = await client.create_study(new_id("rec"), SPACE, deterministic_objective=True)
            assert declared.deterministic_objective

    asyncio.run(body())


# --- the command -------------------------------------------------------------------------------


def _run(target: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    status = cli.main([*args, "--target", target])
    return status, capsys.readouterr().out


def test_best_by_model_prints_the_prediction(
    store_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with hd.Client(store_target) as client:
        study = client.create_study(new_id("cli"), SPACE, algorithm="random", seed=1)
        lucky = _noisy_bowl(study)
        recommended = study.recommended_trial
    assert recommended.prediction is not None
    status, out = _run(store_target, capsys, "best", study.study_id, "--by", "model")
    assert status == 0
    title, header, row = out.splitlines()
    assert title == f"recommended trial of {study.name}, by the model's prediction"
    assert header.split() == [
        "NUMBER", "OBSERVED", "PREDICTED", "NOISE", "SD", "MEASUREMENTS", "x", "y"
    ]  # fmt: skip
    mean, sd = recommended.prediction.mean["value"], recommended.prediction.stddev["value"]
    assert row.split()[0] == str(recommended.number)
    assert f"{mean:.6g} ± {sd:.6g}" in row
    at = header.index("MEASUREMENTS")
    assert row[at : at + len("MEASUREMENTS")].strip() == "1"
    # By observed values (the default, and --by observed): the lucky trial, as before.
    for extra in ((), ("--by", "observed")):
        status, out = _run(store_target, capsys, "best", study.study_id, *extra)
        assert status == 0 and out.splitlines()[1].split()[0] == str(lucky.number)
    status, out = _run(store_target, capsys, "best", study.study_id, "--by", "model", "--json")
    (record,) = json.loads(out)
    assert record["number"] == recommended.number
    assert record["prediction"] == {
        "mean": {"value": mean},
        "stddev": {"value": sd},
        "noise_stddev": recommended.prediction.noise_stddev,
        "measurements": 1,
    }
    status, out = _run(store_target, capsys, "best", study.study_id, "--json")
    assert "prediction" not in json.loads(out)[0]


def test_best_by_model_with_too_few_trials_and_several_objectives(
    store_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    objectives = [hd.Objective("loss"), hd.Objective("acc", "maximize")]
    with hd.Client(store_target) as client:
        one = client.create_study(new_id("cli"), SPACE, seed=1)
        one.add_trial({"x": 0.5, "y": 0.5}, 1.0)
        multi = client.create_study(new_id("cli"), SPACE, objectives, seed=1)
        multi.add_trial({"x": 0.1, "y": 0.5}, values={"loss": 1.0, "acc": 0.9})
        multi.add_trial({"x": 0.5, "y": 0.5}, values={"loss": 0.5, "acc": 0.5})
        multi.add_trial({"x": 0.9, "y": 0.5}, values={"loss": 2.0, "acc": 0.1})
        front = multi.recommended_trials
    status, out = _run(store_target, capsys, "best", one.study_id, "--by", "model")
    lines = out.splitlines()
    assert status == 0 and lines[0].startswith("too few completed trials in")
    assert lines[2].split()[:3] == ["1", "COMPLETED", "1"]
    status, out = _run(store_target, capsys, "best", one.study_id, "--by", "model", "--json")
    assert json.loads(out)[0]["prediction"] is None
    status, out = _run(store_target, capsys, "best", multi.study_id, "--by", "model")
    lines = out.splitlines()
    assert lines[0] == f"Pareto front of the recommendation of {multi.name}: {len(front)} trials"
    assert lines[1].split()[:7] == [
        "NUMBER", "LOSS", "OBSERVED", "LOSS", "PREDICTED", "LOSS", "NOISE"
    ]  # fmt: skip
    assert [r.split()[0] for r in lines[2:]] == [str(t.number) for t in front]


def test_studies_create_with_deterministic_objective_and_export_import(
    store_target: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    study_id = new_id("cli")
    status, _ = _run(
        store_target,
        capsys,
        "studies",
        "create",
        study_id,
        "--param",
        "x=float:0:1",
        "--deterministic-objective",
    )
    assert status == 0
    status, out = _run(store_target, capsys, "studies", "get", study_id, "--json")
    assert json.loads(out)["spec"]["deterministic_objective"] is True
    status, out = _run(store_target, capsys, "studies", "get", study_id)
    assert re.search(r"^deterministic objective +true$", out, re.M)
    with hd.Client(store_target) as client:
        client.get_study(study_id).add_trial({"x": 0.5}, 1.0)
    exported = tmp_path / "study.json"
    status, _ = _run(
        store_target, capsys, "export", study_id, "--format", "json", "-o", str(exported)
    )
    assert status == 0
    assert json.loads(exported.read_text())["spec"]["deterministic_objective"] is True
    copy = new_id("cli")
    status, out = _run(store_target, capsys, "import", copy, str(exported))
    assert status == 0 and out.startswith(f"created studies/{copy}")
    with hd.Client(store_target) as client:
        assert client.get_study(copy).deterministic_objective
    # Without the flag: noisy, and a spec file's declaration is kept unless the flag says so.
    plain = new_id("cli")
    status, _ = _run(store_target, capsys, "studies", "create", plain, "--param", "x=float:0:1")
    with hd.Client(store_target) as client:
        assert status == 0 and not client.get_study(plain).deterministic_objective
