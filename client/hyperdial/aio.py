"""The asyncio client of hyperdial, on ``grpc.aio``: the same surface as the blocking one.

Example:
    >>> import hyperdial as hd  # doctest: +SKIP
    >>> from hyperdial.aio import AsyncClient
    >>> async def main() -> None:
    ...     async with AsyncClient("localhost:50051") as client:
    ...         study = await client.create_study("demo", [hd.Float("x", -5, 5)])
    ...         async with study.trial() as trial:
    ...             await trial.report((trial.params["x"] - 1) ** 2)
    ...         print((await study.best_trial).params)
"""

from hyperdial._aio import AsyncClient, AsyncStudy, AsyncTrial
from hyperdial._base import TrialChanges

__all__ = ["AsyncClient", "AsyncStudy", "AsyncTrial", "TrialChanges"]
