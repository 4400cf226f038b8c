"""The statistics the report gives over seeds: mean, sample standard deviation and count, and
Welch's t-test between two families. (Named stats, not statistics: report.py also runs as a
script, which puts this folder first on sys.path, where a statistics.py would hide the standard
library's.)"""
import math


def mean_std(values):
    """(mean, sample std (n - 1), n) of the non-missing values; the std of a single value is 0;
    (None, None, 0) if there are none."""
    present = [float(value) for value in values if value is not None]
    n = len(present)
    if not n:
        return None, None, 0
    mean = sum(present) / n
    std = math.sqrt(sum((value - mean) ** 2 for value in present) / (n - 1)) if n > 1 else 0.0
    return mean, std, n


def welch(a, b):
    """(mean a - mean b, t, two-sided p) of Welch's t-test (unequal variances), or None with
    fewer than 2 values a side or no spread on either side."""
    a = [float(v) for v in a if v is not None]
    b = [float(v) for v in b if v is not None]
    if len(a) < 2 or len(b) < 2 or (mean_std(a)[1] == 0 and mean_std(b)[1] == 0):
        return None
    # here, not at the top: SciPy takes a while to import, and only comparisons test
    from scipy.stats import ttest_ind
    result = ttest_ind(a, b, equal_var=False)
    return mean_std(a)[0] - mean_std(b)[0], float(result.statistic), float(result.pvalue)
