"""Outcome constraints and the INFEASIBLE outcome in the Python client, blocking and asyncio,
against a real server over loopback, on the memory store and on Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import hyperdial as hd
from hyperdial.aio import AsyncClient, AsyncTrial
from tests.client._support import new_id

SPACE = [hd.Int("n", 1, 8)]
#: latency_ms = 3 n: n <= 5 holds the constraint.
LIMIT = "latency_ms <= 15"


@pytest.fixture
def client(store_target: str) -> Iterator[hd.Client]:
    with hd.Client(store_target) as c:
        yield c


# -- declaring constraints -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lower", "upper"),
    [
        ("latency_ms<=20", None, 20.0),
        ("latency_ms <= 20", None, 20.0),
        ("accuracy >= 0.9", 0.9, None),
        ("20 >= latency_ms", None, 20.0),
        ("0.9 <= accuracy", 0.9, None),
        ("0.1<=x<=0.5", 0.1, 0.5),
        ("0.5 >= x >= 0.1", 0.1, 0.5),
        ("-1e3 <= loss <= 1e-3", -1000.0, 0.001),
    ],
)
def test_constraint_text_is_parsed(text: str, lower: float | None, upper: float | None) -> None:
    c = hd.Constraint.parse(text)
    name = c.name
    assert (c.lower_bound, c.upper_bound) == (lower, upper)
    assert name in text and " " not in name
    assert hd.Constraint.parse(str(c)) == c  # the text it prints reads back


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("latency_ms < 20", "has no <= or >="),
        ("latency_ms == 20", "has no <= or >="),
        ("latency_ms", "has no <= or >="),
        ("0.1 <= x >= 0.5", "mixes <= and >="),
        ("latency_ms <= fast", "one metric name"),
        ("1 <= 2", "one metric name"),
        ("<= 20", "one metric name"),
        ("latency_ms <= nan", "not a finite number"),
        ("latency_ms <= inf", "not a finite number"),
        ("0.1 <= 0.5 <= x", "expected"),
        ("a <= 1 <= b <= 2", "expected"),
        ("x <= 1 < 2", "expected"),
    ],
)
def test_malformed_constraint_text_is_refused_with_the_forms(text: str, says: str) -> None:
    with pytest.raises(ValueError) as info:
        hd.Constraint.parse(text)
    assert says in str(info.value) and repr(text) in str(info.value)
    if "finite" not in says:
        assert "NAME<=UPPER" in str(info.value)  # what to write instead


def test_constraint_checks_its_types() -> None:
    with pytest.raises(TypeError, match="upper_bound must be a number"):
        hd.Constraint("x", upper_bound="20")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lower_bound must be a number"):
        hd.Constraint("x", lower_bound=True)
    assert hd.Constraint("x", upper_bound=20).upper_bound == 20.0
    assert str(hd.Constraint("x", lower_bound=0.1, upper_bound=0.5)) == "0.1 <= x <= 0.5"


def test_create_study_with_constraints(client: hd.Client) -> None:
    study_id = new_id("con")
    wanted = [
        hd.Constraint("latency_ms", upper_bound=20),
        hd.Constraint("accuracy", lower_bound=0.9),
        hd.Constraint("sparsity", lower_bound=0.1, upper_bound=0.5),
    ]
    study = client.create_study(
        study_id, SPACE, constraints=[wanted[0], "accuracy >= 0.9", "0.1 <= sparsity <= 0.5"]
    )
    assert study.constraints == wanted
    assert client.get_study(study_id).constraints == wanted
    assert [c.name for c in study.spec.constraints] == ["latency_ms", "accuracy", "sparsity"]
    assert client.create_study(new_id("con"), SPACE).constraints == []

    # Get-or-create compares the constraints, as the rest of the spec.
    again = client.create_study(study_id, SPACE, constraints=wanted, load_if_exists=True)
    assert again.constraints == wanted
    with pytest.raises(hd.StudySpecMismatchError) as info:
        client.create_study(study_id, SPACE, constraints=[LIMIT], load_if_exists=True)
    assert info.value.metadata["fields"] == "constraints"


def test_bad_constraints_are_refused(client: hd.Client) -> None:
    # Malformed text, or not a list: before any call.
    with pytest.raises(ValueError, match="has no <= or >="):
        client.create_study(new_id("con"), SPACE, constraints=["latency_ms < 20"])
    with pytest.raises(TypeError, match="must be a list"):
        client.create_study(new_id("con"), SPACE, constraints=LIMIT)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Constraint instances or text"):
        client.create_study(new_id("con"), SPACE, constraints=[20])  # type: ignore[list-item]
    # What only the spec as a whole says: the service's typed refusal.
    for constraints in (
        [hd.Constraint("latency_ms")],  # no bound
        [hd.Constraint("x", lower_bound=1, upper_bound=0)],
        [hd.Constraint("value", upper_bound=1)],  # the objective's name
        [LIMIT, LIMIT],
    ):
        with pytest.raises(hd.InvalidArgumentError) as info:
            client.create_study(new_id("con"), SPACE, constraints=constraints)
        assert info.value.reason == "INVALID_CONSTRAINTS"


# -- reporting, feasibility, best ----------------------------------------------------------


def test_results_carry_constraint_values_and_only_feasible_trials_are_best(
    client: hd.Client,
) -> None:
    study = client.create_study(new_id("con"), SPACE, algorithm="grid", constraints=[LIMIT])
    a, b, c = study.ask(3)
    # The best value breaks the constraint; two ways to give the constraint's value.
    broke = a.report(-100.0, constraint_values={"latency_ms": 25.0})
    held = study.tell(b, values={"value": 2.0, "latency_ms": 15.0})  # the bound is inclusive
    other = c.report(3.0, constraint_values={"latency_ms": 1.0}, metadata={"run": "c"})

    assert broke.state is hd.TrialState.COMPLETED and broke.infeasible
    assert broke.values == {"value": -100.0} and broke.value == -100.0
    assert broke.constraint_values == {"latency_ms": 25.0}
    assert broke.infeasibility_reason == "latency_ms = 25 > 15 (upper bound)"
    assert not held.infeasible and held.infeasibility_reason == ""
    assert held.values == {"value": 2.0} and held.constraint_values == {"latency_ms": 15.0}
    assert other.metadata == {"run": "c"}

    assert study.best_trial.number == held.number  # not the better, infeasible one
    assert [t.number for t in study.best_trials] == [held.number]
    recommended = study.recommended_trials  # by the model: feasible trials only too
    assert recommended and broke.number not in [t.number for t in recommended]
    read = {t.number: t for t in study.trials()}
    assert read[broke.number].infeasible and not read[held.number].infeasible
    assert read[broke.number].constraint_values == {"latency_ms": 25.0}
    counts = client.get_study(study.study_id).state_counts
    assert counts["COMPLETED"] == 3 and counts["INFEASIBLE"] == 0


def test_the_pareto_front_holds_feasible_trials_only(client: hd.Client) -> None:
    study = client.create_study(
        new_id("con"),
        SPACE,
        [hd.Objective("loss"), hd.Objective("speed", "maximize")],
        constraints=["memory_gb <= 16"],
    )
    point = {"n": 1}
    dominant = study.add_trial(
        point, values={"loss": 0.0, "speed": 9.0}, constraint_values={"memory_gb": 64}
    )
    fast = study.add_trial(
        point, values={"loss": 0.5, "speed": 5.0}, constraint_values={"memory_gb": 8}
    )
    exact = study.add_trial(
        point, values={"loss": 0.25, "speed": 1.0}, constraint_values={"memory_gb": 16}
    )
    slow = study.add_trial(
        point, values={"loss": 0.75, "speed": 1.0}, constraint_values={"memory_gb": 1}
    )
    assert dominant.infeasible and not (fast.infeasible or exact.infeasible or slow.infeasible)
    # Without the infeasible trial, which dominates them all, two are Pareto-optimal.
    assert sorted(t.number for t in study.best_trials) == [fast.number, exact.number]


def test_no_feasible_trial_means_no_best(client: hd.Client) -> None:
    study = client.create_study(new_id("con"), SPACE, constraints=[LIMIT])
    (trial,) = study.ask()
    trial.report(1.0, constraint_values={"latency_ms": 99.0})
    assert study.best_trials == []
    with pytest.raises(ValueError, match="no trial"):
        _ = study.best_trial


def test_a_missing_constraint_value_is_refused_with_its_reason(client: hd.Client) -> None:
    study = client.create_study(
        new_id("con"), SPACE, constraints=[LIMIT, "accuracy >= 0.5"], algorithm="random"
    )
    (trial,) = study.ask()
    for kwargs in ({}, {"constraint_values": {"latency_ms": 1.0}}):
        with pytest.raises(hd.InvalidArgumentError) as info:
            study.tell(trial, 1.0, **kwargs)  # type: ignore[arg-type]
        assert info.value.reason == "MISSING_CONSTRAINT_VALUE"
        assert info.value.metadata["constraint"] in ("latency_ms", "accuracy")
    # A name that is neither an objective nor a constraint: refused too, by name.
    with pytest.raises(hd.InvalidArgumentError) as info:
        study.tell(trial, 1.0, constraint_values={"latency_ms": 1, "accuracy": 1, "latncy": 1})
    assert info.value.reason == "INVALID_MEASUREMENT" and "latncy" in info.value.message
    # Nothing was recorded: the trial still runs, and takes its complete result.
    done = trial.report(1.0, constraint_values={"latency_ms": 1.0, "accuracy": 0.75})
    assert done.state is hd.TrialState.COMPLETED and not done.infeasible


def test_constraint_values_are_checked_before_the_call(client: hd.Client) -> None:
    study = client.create_study(new_id("con"), SPACE, constraints=[LIMIT])
    (trial,) = study.ask()
    with pytest.raises(ValueError, match="given twice"):
        study.tell(
            trial, values={"value": 1.0, "latency_ms": 1.0}, constraint_values={"latency_ms": 2}
        )
    with pytest.raises(TypeError, match="constraint_values must be a mapping"):
        study.tell(trial, 1.0, constraint_values=[("latency_ms", 1.0)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a number"):
        study.tell(trial, 1.0, constraint_values={"latency_ms": "fast"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="final report"):
        trial.report(1.0, 3, constraint_values={"latency_ms": 1.0})  # type: ignore[call-overload]
    assert study.get_trial(trial.number).state is hd.TrialState.RUNNING


# -- infeasible versus failed --------------------------------------------------------------


def test_infeasible_and_failed_trials_are_told_apart(client: hd.Client) -> None:
    study = client.create_study(new_id("con"), SPACE, algorithm="random")
    a, b, c = study.ask(3)
    oom = a.mark_infeasible("out of memory")
    diverged = study.mark_infeasible(b.number, metadata={"host": "h1"})  # no reason: fine
    lost = c.fail("node lost")

    assert oom.state is hd.TrialState.INFEASIBLE and oom.infeasible
    assert oom.infeasibility_reason == "out of memory" and oom.failure_reason == ""
    assert oom.values is None and oom.complete_time is not None
    assert diverged.state is hd.TrialState.INFEASIBLE and diverged.metadata == {"host": "h1"}
    assert lost.state is hd.TrialState.FAILED and not lost.infeasible
    assert lost.failure_reason == "node lost" and lost.infeasibility_reason == ""

    assert [t.number for t in study.trials(["INFEASIBLE"])] == [oom.number, diverged.number]
    assert [t.number for t in study.trials([hd.TrialState.FAILED])] == [lost.number]
    counts = client.get_study(study.study_id).state_counts
    assert (counts["INFEASIBLE"], counts[hd.TrialState.FAILED]) == (2, 1)
    assert study.best_trials == []  # neither ranks

    # An ended trial cannot be marked again.
    with pytest.raises(hd.FailedPreconditionError) as info:
        study.mark_infeasible(lost, "too late")
    assert info.value.reason == "TRIAL_NOT_RUNNING"
    with pytest.raises(ValueError, match="INFEASIBLE"):
        study.trials(["PRUNED"])


def test_add_trial_imports_infeasible_and_constrained_results(client: hd.Client) -> None:
    study = client.create_study(new_id("con"), SPACE, constraints=[LIMIT])
    held = study.add_trial({"n": 2}, 2.0, constraint_values={"latency_ms": 6.0})
    broke = study.add_trial({"n": 7}, values={"value": 1.0, "latency_ms": 21.0})
    dead = study.add_trial({"n": 8}, infeasibility="diverged", metadata={"src": "old"})
    assert (held.state, held.infeasible) == (hd.TrialState.COMPLETED, False)
    assert (broke.state, broke.infeasible) == (hd.TrialState.COMPLETED, True)
    assert dead.state is hd.TrialState.INFEASIBLE and dead.infeasibility_reason == "diverged"
    assert dead.metadata == {"src": "old"}
    assert study.best_trial.number == held.number

    for outcomes in (
        {"value": 1.0, "infeasibility": "x"},
        {"failure": "x", "infeasibility": "x"},
        {"constraint_values": {"latency_ms": 1.0}, "failure": "x"},
    ):
        with pytest.raises(ValueError, match="one outcome"):
            study.add_trial({"n": 1}, **outcomes)  # type: ignore[arg-type]
    with pytest.raises(hd.InvalidArgumentError) as info:
        study.add_trial({"n": 1}, 1.0)
    assert info.value.reason == "MISSING_CONSTRAINT_VALUE"


def test_trial_context_ends_infeasible_on_trial_infeasible(client: hd.Client) -> None:
    study = client.create_study(new_id("con"), SPACE, algorithm="random")
    with study.trial() as t:
        raise hd.TrialInfeasible("CUDA out of memory")
    # The block's normal end: the exception goes no further.
    stored = study.get_trial(t.number)
    assert stored.state is hd.TrialState.INFEASIBLE
    assert stored.infeasibility_reason == "CUDA out of memory"

    with pytest.raises(RuntimeError), study.trial() as t2:
        raise RuntimeError("node lost")
    assert study.get_trial(t2.number).state is hd.TrialState.FAILED  # any other error

    with study.trial() as t3:
        t3.mark_infeasible()
    assert study.get_trial(t3.number).state is hd.TrialState.INFEASIBLE


def test_optimize_reports_constraints_and_marks_infeasible_points(
    client: hd.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    study = client.create_study(new_id("con"), SPACE, algorithm="grid", constraints=[LIMIT])

    def objective(trial: hd.Trial) -> hd.ObjectiveResult:
        n = int(trial.params["n"])
        if n >= 7:
            raise hd.TrialInfeasible(f"out of memory at n={n}")
        return {"value": -float(n), "latency_ms": 3.0 * n}

    study.optimize(objective, n_workers=2, show_progress=True)  # the grid: 8 points
    trials = {int(t.params["n"]): t for t in study.trials()}
    assert sorted(trials) == list(range(1, 9))
    for n, t in trials.items():
        if n >= 7:
            assert t.state is hd.TrialState.INFEASIBLE
            assert t.infeasibility_reason == f"out of memory at n={n}"
        else:
            assert t.state is hd.TrialState.COMPLETED
            assert t.constraint_values == {"latency_ms": 3.0 * n}
            assert t.infeasible == (n == 6)
    assert study.best_trial.params == {"n": 5}  # -6 would be better, but breaks the limit
    line = capsys.readouterr().err.rstrip().rsplit("\r", 1)[-1]
    # Two INFEASIBLE trials and one that broke the constraint; the best is the feasible one.
    assert "8 trials | 3 infeasible | best -5 (#" in line


def test_optimize_fails_other_errors_and_still_honours_n_trials(client: hd.Client) -> None:
    study = client.create_study(new_id("con"), SPACE, algorithm="random")
    calls = []

    def objective(trial: hd.Trial) -> float:
        calls.append(trial.number)
        if len(calls) % 2:
            raise hd.TrialInfeasible()
        raise KeyError("flaky disk")

    study.optimize(objective, n_trials=4, catch=(KeyError,))
    states = [str(t.state) for t in study.trials()]
    assert states == ["INFEASIBLE", "FAILED", "INFEASIBLE", "FAILED"]


# -- the asyncio client ------------------------------------------------------------------------


def test_async_client_constraints_and_infeasible_trials(store_target: str) -> None:
    async def main() -> None:
        async with AsyncClient(store_target) as client:
            study = await client.create_study(
                new_id("acon"), SPACE, algorithm="grid", constraints=[LIMIT]
            )
            assert study.constraints == [hd.Constraint("latency_ms", upper_bound=15)]
            again = await client.create_study(
                study.study_id, SPACE, constraints=[LIMIT], load_if_exists=True
            )
            assert again.name == study.name

            a, b, c = await study.ask(3)
            broke = await a.report(-10.0, constraint_values={"latency_ms": 30.0})
            held = await study.tell(b, values={"value": 1.0, "latency_ms": 3.0})
            dead = await c.mark_infeasible("diverged")
            assert broke.infeasible and broke.infeasibility_reason.startswith("latency_ms = 30")
            assert not held.infeasible and held.constraint_values == {"latency_ms": 3.0}
            assert dead.state is hd.TrialState.INFEASIBLE and dead.infeasibility_reason
            assert (await study.best_trial).number == held.number

            (d,) = await study.ask()
            with pytest.raises(hd.InvalidArgumentError) as info:
                await d.report(1.0)
            assert info.value.reason == "MISSING_CONSTRAINT_VALUE"
            await study.mark_infeasible(d, "cannot build")

            async with study.trial() as e:
                raise hd.TrialInfeasible("too big")
            assert (await study.get_trial(e.number)).state is hd.TrialState.INFEASIBLE

            imported = await study.add_trial({"n": 1}, infeasibility="elsewhere")
            assert imported.state is hd.TrialState.INFEASIBLE

            ran: list[int] = []

            async def objective(trial: AsyncTrial) -> hd.ObjectiveResult:
                await asyncio.sleep(0)
                ran.append(trial.number)
                if trial.number % 2:
                    raise hd.TrialInfeasible("out of memory")
                n = int(trial.params["n"])
                return {"value": -float(n), "latency_ms": 3.0 * n}

            await study.optimize(objective, n_workers=2)  # the rest of the grid
            assert ran
            for number in ran:
                t = await study.get_trial(number)
                odd = bool(number % 2)
                assert t.state is (hd.TrialState.INFEASIBLE if odd else hd.TrialState.COMPLETED)
                if odd:
                    assert t.infeasibility_reason == "out of memory"
            best = await study.best_trial
            assert not best.infeasible and best.constraint_values is not None
            assert best.constraint_values["latency_ms"] <= 15
            infeasible = await study.trials(["INFEASIBLE"])
            assert all(t.infeasible for t in infeasible)
            # c, d, e, the imported one, and the odd ones of the run.
            assert len(infeasible) == 4 + sum(n % 2 for n in ran)

    asyncio.run(main())
