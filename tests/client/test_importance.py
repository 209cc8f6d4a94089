"""``Study.parameter_importance``, its asyncio twin and ``hyperdial studies importance``, through
a real server on each store, on seeded trials of a synthetic objective whose most important
parameters are known (``bench/importance_problems.py``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

import hyperdial as hd
from bench.importance_problems import MIXED, trials
from hyperdial import cli
from hyperdial.aio import AsyncClient
from tests.client._support import new_id


@pytest.fixture
def client(store_target: str) -> Iterator[hd.Client]:
    with hd.Client(store_target) as c:
        yield c


def _mixed_study(client: hd.Client, n: int, seed: int = 0) -> hd.Study:
    """A study of the mixed problem (lr, layers, optimizer, batch, dropout, activation) with
    ``n`` completed trials; objectives ``loss`` (minimised, the problem's value) and
    ``score`` (maximised, the same value negated: the same trials are the best)."""
    study = client.create_study(
        new_id("imp"),
        MIXED.params,
        objectives=[hd.Objective("loss"), hd.Objective("score", "maximize")],
        algorithm="random",
    )
    for point, value in trials(MIXED, n, seed):
        study.add_trial(point, values={"loss": value, "score": -value})
    return study


def test_parameter_importance(client: hd.Client) -> None:
    study = _mixed_study(client, 200)
    result = study.parameter_importance()
    assert isinstance(result, hd.ParameterImportances)
    assert result.method == "ped-anova" and result.trial_count == 200
    assert all(isinstance(p, hd.ParameterImportance) for p in result.parameters)
    assert [p.parameter for p in result.parameters][:2] == ["lr", "layers"]
    assert sum(p.importance for p in result.parameters) == pytest.approx(1.0)
    assert all(p.active_trials == 200 for p in result.parameters)
    assert list(result.as_dict()) == [p.parameter for p in result.parameters]
    # The maximised twin of the objective explains the same trials the same way.
    assert study.parameter_importance("score").parameters == result.parameters
    assert study.parameter_importance("loss") == result
    with pytest.raises(AttributeError):
        result.method = "other"  # type: ignore[misc]


def test_errors(client: hd.Client) -> None:
    study = _mixed_study(client, 10)
    with pytest.raises(hd.FailedPreconditionError) as few:
        study.parameter_importance()
    assert few.value.reason == "NOT_ENOUGH_TRIALS"
    assert few.value.metadata["completed_trials"] == "10"
    with pytest.raises(hd.InvalidArgumentError) as unknown:
        study.parameter_importance("accuracy")
    assert unknown.value.reason == "UNKNOWN_OBJECTIVE"
    client.delete_study(study.study_id)
    with pytest.raises(hd.NotFoundError):
        study.parameter_importance()


def test_async_parameter_importance(client: hd.Client, store_target: str) -> None:
    study = _mixed_study(client, 50, seed=1)
    expected = study.parameter_importance("score")

    async def main() -> hd.ParameterImportances:
        async with AsyncClient(store_target) as aclient:
            astudy = await aclient.get_study(study.study_id)
            return await astudy.parameter_importance("score")

    assert asyncio.run(main()) == expected


def test_the_command(
    client: hd.Client, store_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _mixed_study(client, 100, seed=2)
    expected = study.parameter_importance()
    capsys.readouterr()
    status = cli.main(["studies", "importance", study.study_id, "--target", store_target])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        f"importance to loss (minimize) of the parameters of {study.name}, from 100 "
        "completed trials (ped-anova)"
    )
    assert lines[1] == ""
    assert lines[2].split() == ["PARAMETER", "IMPORTANCE", "ACTIVE", "TRIALS"]
    rows = [line.split() for line in lines[3:]]
    assert [r[0] for r in rows] == [p.parameter for p in expected.parameters]
    assert [r[1] for r in rows] == [f"{p.importance:.3f}" for p in expected.parameters]
    assert [r[2] for r in rows] == ["100"] * len(rows)
    top = expected.parameters[0]
    assert rows[0][3] == "#" * round(top.importance * 30)

    status = cli.main(
        ["studies", "importance", study.name, "--objective", "score", "--json"]
        + ["--target", store_target]
    )
    out, _ = capsys.readouterr()
    assert status == 0
    record = json.loads(out)
    assert record["study"] == study.name and record["objective"] == "score"
    assert (record["method"], record["trial_count"]) == ("ped-anova", 100)
    assert record["parameters"][0] == {
        "parameter": top.parameter,
        "importance": top.importance,
        "active_trials": 100,
    }


def test_the_command_refuses_too_few_trials_and_unknown_studies(
    client: hd.Client, store_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _mixed_study(client, 3)
    capsys.readouterr()
    status = cli.main(["studies", "importance", study.study_id, "--target", store_target])
    out, err = capsys.readouterr()
    assert status == cli.EXIT_INVALID and out == ""
    assert "NOT_ENOUGH_TRIALS" in err and "at least 11 completed trials" in err
    status = cli.main(
        ["studies", "importance", study.study_id, "--objective", "nope"]
        + ["--target", store_target]
    )
    _, err = capsys.readouterr()
    assert status == cli.EXIT_INVALID and "UNKNOWN_OBJECTIVE" in err
    status = cli.main(["studies", "importance", new_id("absent"), "--target", store_target])
    _, err = capsys.readouterr()
    assert status == cli.EXIT_NOT_FOUND and "STUDY_NOT_FOUND" in err
