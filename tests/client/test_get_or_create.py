"""``create_study(..., load_if_exists=True)``: get-or-create against a real server, once per
store: the same study twice, a clear error for another spec, and workers racing to create."""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import Callable
from typing import Any

import grpc
import pytest

import hyperdial as hd
from hyperdial._channel import channel_options
from hyperdial.aio import AsyncClient
from tests.client._support import new_id

SPACE = [
    hd.Float("lr", 1e-4, 1e-1, log=True),
    hd.Int("layers", 1, 4),
    hd.Categorical("optimizer", ["sgd", "adam"]),
    hd.Float("momentum", 0.0, 0.99, when=("optimizer", ["sgd"])),
    hd.Discrete("batch", [32, 64, 128]),
]


def test_creating_twice_with_load_if_exists_gives_the_same_study(store_target: str) -> None:
    study_id = new_id()
    options: dict[str, Any] = {
        "algorithm": "bayesian",
        "seed": 7,
        "max_trials": 50,
        "initial_trials": 4,
        "lease_timeout": 30,
        "early_stopping": hd.MedianStopping(warmup_steps=2),
    }
    with hd.Client(store_target) as client:
        first = client.create_study(study_id, SPACE, "maximize", load_if_exists=True, **options)
        first.tell(first.ask()[0], 0.5)
        again = client.create_study(study_id, SPACE, "maximize", load_if_exists=True, **options)
        assert again.name == first.name and again.spec == first.spec
        assert again.trial_count == 1  # the stored study, not a new one
        # What the service chose for what is left unset is not a difference.
        bare = client.create_study(
            study_id,
            SPACE,
            "maximize",
            max_trials=50,
            early_stopping=hd.EarlyStopping(hd.MedianStopping(warmup_steps=2), objective="value"),
            load_if_exists=True,
        )
        assert bare.name == first.name
        # Without load_if_exists, an existing study is still an error.
        with pytest.raises(hd.AlreadyExistsError) as info:
            client.create_study(study_id, SPACE, "maximize", **options)
        assert type(info.value) is hd.AlreadyExistsError
        assert info.value.reason == "STUDY_ALREADY_EXISTS"


def test_the_service_s_choices_are_kept_and_match(store_target: str) -> None:
    study_id = new_id()
    with hd.Client(store_target) as client:
        created = client.create_study(study_id, SPACE, load_if_exists=True)
        # The service drew the seed and chose the algorithm; asking for those now matches.
        same = client.create_study(
            study_id,
            SPACE,
            algorithm=created.algorithm,
            seed=created.spec.seed,
            lease_timeout=created.lease_timeout,
            load_if_exists=True,
        )
        assert same.name == created.name


def test_another_spec_raises_naming_every_field(store_target: str) -> None:
    study_id = new_id()
    with hd.Client(store_target) as client:
        client.create_study(study_id, SPACE, algorithm="random", seed=1, max_trials=10)
        changed = [
            hd.Float("lr", 1e-4, 1.0, log=True),  # another upper bound
            *SPACE[1:4],
            # "batch" dropped, "dropout" added
            hd.Float("dropout", 0.0, 0.5),
        ]
        with pytest.raises(hd.StudySpecMismatchError) as info:
            client.create_study(
                study_id,
                changed,
                "maximize",
                algorithm="quasi_random",
                seed=2,
                lease_timeout=30,
                early_stopping=hd.MedianStopping(),
                load_if_exists=True,
            )
    error = info.value
    assert error.fields == [
        "parameters['lr']",
        "parameters['dropout']",
        "parameters['batch']",
        "objectives",
        "algorithm",
        "seed",
        "max_trials",
        "lease_timeout",
        "early_stopping",
    ]
    message = str(error)
    assert f"study studies/{study_id} exists with another spec" in message
    assert "parameters['lr']: requested Float(name='lr', low=0.0001, high=1.0" in message
    assert "stored Float(name='lr', low=0.0001, high=0.1" in message
    assert "parameters['dropout']: requested Float(name='dropout'" in message
    assert "stored 'absent'" in message
    assert "parameters['batch']: requested 'absent', stored Discrete(" in message
    assert "algorithm: requested 'quasi_random', stored 'random'" in message
    assert "seed: requested 2, stored 1" in message
    assert "max_trials: requested None, stored 10" in message
    assert "lease_timeout: requested 30.0, stored" in message
    assert "early_stopping: requested EarlyStopping(rule=MedianStopping(" in message
    # An AlreadyExistsError (what a creation without load_if_exists raises) and a ValueError.
    assert isinstance(error, hd.AlreadyExistsError) and isinstance(error, ValueError)
    assert (error.code, error.reason) == (grpc.StatusCode.ALREADY_EXISTS, "STUDY_ALREADY_EXISTS")
    assert error.metadata["study"] == f"studies/{study_id}"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is hd.StudySpecMismatchError and copy.fields == error.fields


def test_the_same_parameters_in_another_order_differ(store_target: str) -> None:
    study_id = new_id()
    with hd.Client(store_target) as client:
        client.create_study(study_id, SPACE, algorithm="grid", grid_resolution=3)
        with pytest.raises(hd.StudySpecMismatchError) as info:
            client.create_study(study_id, SPACE[::-1], load_if_exists=True)
        assert info.value.fields == ["parameter order"]
        with pytest.raises(hd.StudySpecMismatchError) as info:
            client.create_study(study_id, SPACE, grid_resolution=4, load_if_exists=True)
        assert info.value.fields == ["grid_resolution"]
        assert "grid_resolution: requested 4, stored 3" in str(info.value)


def test_workers_racing_to_get_or_create_all_get_the_study(store_target: str) -> None:
    study_id = new_id()
    workers = 8
    barrier = threading.Barrier(workers)
    names: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            with hd.Client(store_target) as client:
                # Connected first, so that the creations race each other, not the connections.
                with pytest.raises(hd.NotFoundError):
                    client.get_study(study_id)
                barrier.wait(60)
                study = client.create_study(
                    study_id, SPACE, algorithm="random", seed=3, load_if_exists=True
                )
                with lock:
                    names.append(study.name)
        except BaseException as e:
            with lock:
                errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    # One creation won; the others met ALREADY_EXISTS and read the study instead.
    assert errors == []
    assert names == [f"studies/{study_id}"] * workers


class DeleteBeforeGet(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Deletes the study just before the client's first ``GetStudy``: a concurrent delete
    between get-or-create's two calls."""

    def __init__(self, delete: Callable[[], None]) -> None:
        self._delete: Callable[[], None] | None = delete
        self.methods: list[str] = []

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        method = details.method.rsplit("/", 1)[-1]
        self.methods.append(method)
        if method == "GetStudy" and self._delete is not None:
            delete, self._delete = self._delete, None
            delete()
        return continuation(details, request)


def test_a_study_deleted_between_create_and_get_is_created_again(store_target: str) -> None:
    study_id = new_id()
    with hd.Client(store_target) as other:
        other.create_study(study_id, SPACE, algorithm="random")
        interceptor = DeleteBeforeGet(lambda: other.delete_study(study_id))
        channel = grpc.intercept_channel(
            grpc.insecure_channel(store_target, options=channel_options()), interceptor
        )
        with channel, hd.Client(channel=channel) as client:
            study = client.create_study(study_id, SPACE, algorithm="random", load_if_exists=True)
            assert study.trial_count == 0
    assert interceptor.methods == ["CreateStudy", "GetStudy", "CreateStudy"]


def test_async_get_or_create(store_target: str) -> None:
    study_id = new_id()

    async def main() -> None:
        clients = [AsyncClient(store_target) for _ in range(6)]
        try:
            # Racing workers, each with its own client.
            studies = await asyncio.gather(
                *(
                    c.create_study(study_id, SPACE, algorithm="random", load_if_exists=True)
                    for c in clients
                )
            )
            assert {s.name for s in studies} == {f"studies/{study_id}"}
            again = await clients[0].create_study(
                study_id, SPACE, algorithm="random", load_if_exists=True
            )
            assert again.spec == studies[0].spec
            with pytest.raises(hd.StudySpecMismatchError) as info:
                await clients[0].create_study(
                    study_id, SPACE[:2], algorithm="grid", grid_resolution=3, load_if_exists=True
                )
            assert info.value.fields == [
                "parameters['optimizer']",
                "parameters['momentum']",
                "parameters['batch']",
                "algorithm",
                "grid_resolution",
            ]
            with pytest.raises(hd.AlreadyExistsError) as exists:
                await clients[0].create_study(study_id, SPACE, algorithm="random")
            assert not isinstance(exists.value, hd.StudySpecMismatchError)
        finally:
            for c in clients:
                await c.close()

    asyncio.run(main())
