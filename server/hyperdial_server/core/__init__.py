"""The pure domain: search spaces, studies, trials, typed errors and limits. No I/O."""
