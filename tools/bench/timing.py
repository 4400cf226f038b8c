"""Timed calls, their median, and a process's peak memory: the measurements every benchmark
job and the form selection take."""
import resource
import time


def time_calls(fn, warmup, repeats):
    """Wall seconds of `repeats` calls of `fn` after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return times


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def peak_rss_mb():
    """Peak resident set of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def choose_fastest_variant(res):
    """A job measured in several variants (graphs, memory layouts): record the fastest as the
    job's figure (`best`, its images/s) and the lowest batch-1 latency of any variant."""
    variants = res['variants']
    best = max(variants, key=lambda k: variants[k]['images_per_sec'])
    res.update(best=best, images_per_sec=variants[best]['images_per_sec'])
    if any('latency_ms' in v for v in variants.values()):
        res['latency_ms'] = min(v['latency_ms'] for v in variants.values() if 'latency_ms' in v)
    return res
