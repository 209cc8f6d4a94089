"""The connection to a hyperdial service and the study-level calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar, cast

import grpc

from hyperdial._errors import from_rpc_error
from hyperdial._space import Objective, Parameter, parameters_to_proto
from hyperdial._study import Study, study_name
from hyperdial.v1 import study_pb2, tuning_service_pb2, tuning_service_pb2_grpc

__all__ = ["Client"]

R = TypeVar("R")

_ALGORITHMS = {
    "grid": study_pb2.ALGORITHM_GRID,
    "random": study_pb2.ALGORITHM_RANDOM,
    "quasi_random": study_pb2.ALGORITHM_QUASI_RANDOM,
}
# The service refuses larger messages; matching it makes an oversized answer fail clearly.
_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class Client:
    """A connection to a hyperdial service.

    Thread-safe: one client may be shared by any number of threads (``Study.optimize`` does).

    Args:
        target: ``host:port`` of the service.
        timeout: Deadline of each call, in seconds; ``None`` for none.
        channel: A channel to use instead of opening one to ``target`` (for TLS, interceptors
            or custom options). The caller keeps ownership: ``close()`` leaves it open.

    Example:
        >>> with Client("localhost:50051") as client:  # doctest: +SKIP
        ...     study = client.create_study("demo", [Float("x", -1, 1)])
    """

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        timeout: float | None = 30.0,
        channel: grpc.Channel | None = None,
    ) -> None:
        self._target = target
        self._timeout = timeout
        self._owns_channel = channel is None
        if channel is None:
            channel = grpc.insecure_channel(
                target,
                options=[
                    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                ],
            )
        self._channel = channel
        self._stub = tuning_service_pb2_grpc.TuningServiceStub(channel)

    def __repr__(self) -> str:
        return f"Client({self._target!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel, unless it was passed in by the caller."""
        if self._owns_channel:
            self._channel.close()

    def _invoke(self, method: str, request: object, response_type: type[R]) -> R:
        """Calls one unary RPC of ``TuningService``; converts every gRPC error."""
        rpc: Callable[..., Any] = getattr(self._stub, method)
        try:
            response = rpc(request, timeout=self._timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        return cast(R, response)

    # -- studies ---------------------------------------------------------------------------

    def create_study(
        self,
        study_id: str,
        params: Sequence[Parameter],
        objectives: Sequence[Objective] | Objective | str = "minimize",
        *,
        algorithm: str | None = None,
        seed: int | None = None,
        max_trials: int | None = None,
        grid_resolution: int | None = None,
    ) -> Study:
        """Creates a study.

        Args:
            study_id: Id of the study: letters, digits, ``.``, ``_``, ``-``.
            params: The search space.
            objectives: The objectives; a bare ``"minimize"`` or ``"maximize"`` means one
                objective named ``"value"`` with that goal.
            algorithm: ``"grid"``, ``"random"`` or ``"quasi_random"``; ``None`` lets the
                service choose (and the study records its choice).
            seed: Seed of the sampler; ``None`` lets the service draw and record one.
            max_trials: Most trials ever handed out; ``None`` for no limit.
            grid_resolution: For ``"grid"`` with float parameters: values per float parameter.

        Returns:
            The study as stored.

        Raises:
            ValueError: ``algorithm`` or ``objectives`` is not one of the accepted words.
            AlreadyExistsError: A study with that id exists (reason ``STUDY_ALREADY_EXISTS``).
            InvalidArgumentError: The spec is invalid (e.g. reason ``INVALID_SEARCH_SPACE``).
        """
        spec = study_pb2.StudySpec(
            parameters=parameters_to_proto(params),
            objectives=[o._to_proto() for o in _objectives(objectives)],
        )
        if algorithm is not None:
            if algorithm not in _ALGORITHMS:
                raise ValueError(
                    f"algorithm must be one of {sorted(_ALGORITHMS)} or None; got {algorithm!r}"
                )
            spec.algorithm = _ALGORITHMS[algorithm]
        if seed is not None:
            spec.seed = seed
        if max_trials is not None:
            spec.max_trials = max_trials
        if grid_resolution is not None:
            spec.grid_resolution = grid_resolution
        response = self._invoke(
            "CreateStudy",
            tuning_service_pb2.CreateStudyRequest(study_id=study_id, spec=spec),
            tuning_service_pb2.CreateStudyResponse,
        )
        return Study(self, response.study)

    def get_study(self, study_id_or_name: str) -> Study:
        """Returns a study.

        Args:
            study_id_or_name: ``"my-study"`` or ``"studies/my-study"``.

        Raises:
            NotFoundError: No such study (reason ``STUDY_NOT_FOUND``).
        """
        response = self._invoke(
            "GetStudy",
            tuning_service_pb2.GetStudyRequest(name=study_name(study_id_or_name)),
            tuning_service_pb2.GetStudyResponse,
        )
        return Study(self, response.study)

    def list_studies(self) -> Iterator[Study]:
        """Every study, in order of id, fetched one page at a time as the iterator advances."""
        token = ""
        while True:
            response = self._invoke(
                "ListStudies",
                tuning_service_pb2.ListStudiesRequest(page_token=token),
                tuning_service_pb2.ListStudiesResponse,
            )
            for pb in response.studies:
                yield Study(self, pb)
            token = response.next_page_token
            if not token:
                return

    def delete_study(self, study_id_or_name: str | Study) -> None:
        """Deletes a study and all its trials.

        Args:
            study_id_or_name: ``"my-study"``, ``"studies/my-study"`` or a :class:`Study`.

        Raises:
            NotFoundError: No such study (reason ``STUDY_NOT_FOUND``).
        """
        name = study_id_or_name.name if isinstance(study_id_or_name, Study) else study_id_or_name
        self._invoke(
            "DeleteStudy",
            tuning_service_pb2.DeleteStudyRequest(name=study_name(name)),
            tuning_service_pb2.DeleteStudyResponse,
        )


def _objectives(objectives: Sequence[Objective] | Objective | str) -> list[Objective]:
    if isinstance(objectives, str):
        if objectives not in ("minimize", "maximize"):
            raise ValueError(
                "objectives must be 'minimize', 'maximize' or a list of Objective; "
                f"got {objectives!r}"
            )
        return [Objective("value", "maximize" if objectives == "maximize" else "minimize")]
    if isinstance(objectives, Objective):
        return [objectives]
    out = list(objectives)
    for o in out:
        if not isinstance(o, Objective):
            raise TypeError(f"objectives must be Objective instances; got {o!r}")
    return out
