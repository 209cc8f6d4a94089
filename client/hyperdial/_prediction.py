"""What the service's model predicts for a trial's parameters (``TrialPrediction``)."""

from __future__ import annotations

from dataclasses import dataclass

from hyperdial.v1 import tuning_service_pb2

__all__ = ["Prediction"]


@dataclass(frozen=True)
class Prediction:
    """The model's prediction for the parameters of a recommended trial
    (``study.recommended_trial.prediction``).

    The service fits a Gaussian process to every completed trial of the study (the model of
    the ``"bayesian"`` algorithm, whatever the study's algorithm) and predicts the noise-free
    value of each objective at the trial's parameters.

    Attributes:
        mean: Predicted noise-free value of each objective, by objective name.
        stddev: Standard deviation of that prediction (how unsure the model is of the
            noise-free value; the noise of one more measurement is not in it), by name.
        noise_stddev: Standard deviation of the noise of one measurement, as the model fitted
            it, by name; 0 for a study with ``deterministic_objective``.
        measurements: Completed trials measured at exactly these parameters (1 without
            repeats).
    """

    mean: dict[str, float]
    stddev: dict[str, float]
    noise_stddev: dict[str, float]
    measurements: int

    @property
    def value(self) -> float | None:
        """The predicted mean of a single-objective study's objective; ``None`` with several."""
        if len(self.mean) != 1:
            return None
        return next(iter(self.mean.values()))

    @classmethod
    def _from_proto(cls, pb: tuning_service_pb2.TrialPrediction) -> Prediction:
        return cls(
            mean=dict(pb.mean),
            stddev=dict(pb.stddev),
            noise_stddev=dict(pb.noise_stddev),
            measurements=pb.measurements,
        )
