"""dmrnet.tools.experiments: the paper's experiments, run and reported.

The runner (python -m dmrnet.tools.experiments ...):
    runner       the command line: checks, then runs an experiment
    definitions  each experiment's networks, data sets, seeds and scaled recipe: its runs
    commands     a run's training command; the recipe check of finished runs
    scheduler    runs on GPU slots or CPU jobs, stopped with the runner
    collect      what a run folder says; results.jsonl from the finished runs

The report (python -m dmrnet.tools.experiments.report ...):
    report       the command line: which tables and figures, from which records
    results      reading results files; choosing records by their fields
    stats        mean, std, Welch's t-test
    tables       Tables 2-5, Figure 6's numbers, the comparisons on data of our own
    comparable   the notes on runs that are not comparable (recipe, BatchNorm batch)
    figures      Figure 6, error against parameters and against L, Figure 7-style curves

Beside them: layout (where runs and results live), publish, recipe, resumable. The paper's
numbers are dmrnet.paper's (paper/numbers.json, dmrnet.paper.reference).

Importing the package imports none of them: the report must stay free of MXNet, the runner is
not.
"""
