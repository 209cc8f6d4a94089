"""``hyperdial studies importance``: how much each parameter of a study matters to an objective.

A table by default (most important first, with a bar of its share); ``--json`` prints the
answer for scripts.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TextIO

from hyperdial._cli_common import EXIT_OK, print_json
from hyperdial._client import Client
from hyperdial._table import format_table

__all__ = ["studies_importance"]

#: Characters of the bar of a parameter whose importance is 1.
BAR_WIDTH = 30


def studies_importance(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    study = client.get_study(args.study)
    result = study.parameter_importance(args.objective)
    objective = args.objective or study.objectives[0].name
    if args.json:
        print_json({"study": study.name, "objective": objective, **asdict(result)}, out)
        return EXIT_OK
    goal = next((o.goal for o in study.objectives if o.name == objective), "")
    print(
        f"importance to {objective} ({goal}) of the parameters of {study.name}, from "
        f"{result.trial_count} completed trials ({result.method})",
        file=out,
    )
    print(file=out)
    rows = [
        [
            p.parameter,
            f"{p.importance:.3f}",
            p.active_trials,
            "#" * round(p.importance * BAR_WIDTH),
        ]
        for p in result.parameters
    ]
    print(
        format_table(["PARAMETER", "IMPORTANCE", "ACTIVE TRIALS", ""], rows, numeric=[1, 2]),
        file=out,
    )
    return EXIT_OK
