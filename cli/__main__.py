"""`python -m cli ...`: the same as the `vpa` console script."""

from cli.main import run

run()
