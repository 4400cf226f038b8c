"""Device strings as the scripts take them ("0", "0,1", "0-7", "0,2-3"; empty: the CPU)."""


def parse_devices(spec):
    """'0-3,6' -> [0, 1, 2, 3, 6]; '' or None -> []. Raises ValueError on anything else."""
    ids = []
    for part in filter(None, (p.strip() for p in (spec or '').split(','))):
        if '-' in part:
            lo, hi = part.split('-', 1)
            lo, hi = int(lo), int(hi)
            if hi < lo:
                raise ValueError('empty range %r' % part)
            ids.extend(range(lo, hi + 1))
        else:
            ids.append(int(part))
    if any(i < 0 for i in ids):
        raise ValueError('negative device id in %r' % spec)
    return ids


def device_count(spec, cpus=1):
    """How many devices a run on `spec` (GPUs) or else `cpus` CPU contexts uses: what a batch
    is split over."""
    return len(parse_devices(spec)) or int(cpus or 1)


def contexts(spec, cpus=1):
    """The MXNet contexts of a device string: GPUs when it names any, else `cpus` CPU contexts
    (several CPU contexts run the multi-device code paths on one machine)."""
    import mxnet as mx
    gpus = parse_devices(spec)
    return [mx.gpu(g) for g in gpus] if gpus else [mx.cpu(i) for i in range(int(cpus or 1))]
