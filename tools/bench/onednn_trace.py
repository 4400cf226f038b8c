"""Where the time goes, from oneDNN's own log of every primitive it executes.

A trace job (jobs.job_trace) runs one phase of one implementation with oneDNN's verbose log
switched on (TRACE_ENV, set by the parent for that process only) and prints TRACE_BEGIN and
TRACE_END around its timed iterations; `parse_trace` adds up the execution times oneDNN logs
between the two marks, per kind of primitive, and `breakdown` sets them against the wall time
of the untraced timing run.
"""
from dmrnet.tools.bench.timing import median

TRACE_BEGIN, TRACE_END = 'BENCHTRACE begin', 'BENCHTRACE end'
# MXNet 1.9.1 bundles oneDNN 2.4 (reads DNNL_VERBOSE), PyTorch 2.x oneDNN 3.x (ONEDNN_VERBOSE).
TRACE_ENV = {'mx': {'DNNL_VERBOSE': '1'}, 'torch': {'ONEDNN_VERBOSE': '1'}}
# primitive kinds as oneDNN names them -> the columns of the breakdown
TRACE_KINDS = {'convolution': 'conv', 'batch_normalization': 'bnorm', 'eltwise': 'eltwise',
               'sum': 'sum', 'binary': 'sum', 'reorder': 'reorder', 'pooling': 'pool',
               'pooling_v2': 'pool'}


def parse_trace(lines, iterations):
    """Milliseconds per iteration that oneDNN spent in each kind of primitive, from its verbose
    log between TRACE_BEGIN and TRACE_END. Reads both formats: oneDNN 2.x
    ('dnnl_verbose,exec,cpu,KIND,IMPL,...,TIME') and 3.x
    ('onednn_verbose,v1,primitive,exec,cpu,KIND,IMPL,...,TIME'). Returns
    {column: ms} with the columns of TRACE_KINDS and 'other'."""
    out, inside = {}, False
    for line in lines:
        if line.startswith(TRACE_BEGIN):
            inside = True
            continue
        if line.startswith(TRACE_END):
            break
        if not inside:
            continue
        fields = line.strip().split(',')
        if fields[0] == 'dnnl_verbose' and len(fields) > 4 and fields[1] == 'exec':
            kind = fields[3]
        elif (fields[0] == 'onednn_verbose' and len(fields) > 6 and fields[2] == 'primitive'
              and fields[3] == 'exec'):
            kind = fields[5]
        else:
            continue
        try:
            ms = float(fields[-1])
        except ValueError:
            continue
        column = TRACE_KINDS.get(kind, 'other')
        out[column] = out.get(column, 0.0) + ms
    return {k: v / iterations for k, v in out.items()}


def _exec_fields(line):
    """(kind, implementation, ms) of an execution line of either log format, else None."""
    fields = line.strip().split(',')
    if fields[0] == 'dnnl_verbose' and len(fields) > 4 and fields[1] == 'exec':
        kind, impl = fields[3], fields[4]
    elif (fields[0] == 'onednn_verbose' and len(fields) > 6 and fields[2] == 'primitive'
          and fields[3] == 'exec'):
        kind, impl = fields[5], fields[6]
    else:
        return None
    try:
        return kind, impl, float(fields[-1])
    except ValueError:
        return None


def kernels(lines, iterations, kind='convolution'):
    """Which oneDNN implementations ran the `kind` primitives between the marks, and their
    milliseconds per iteration: {'brgconv:avx512_core_amx_bf16': 81.2, ...}. The names say the
    instruction set (avx2, avx512_core, avx512_core_bf16, avx512_core_amx, ..._vnni) and the
    data type where it is not float32."""
    out, inside = {}, False
    for line in lines:
        if line.startswith(TRACE_BEGIN):
            inside = True
        elif line.startswith(TRACE_END):
            break
        elif inside:
            found = _exec_fields(line)
            if found and found[0] == kind:
                out[found[1]] = out.get(found[1], 0.0) + found[2]
    return {k: round(v / iterations, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def breakdown(res, batch_size, images_per_sec):
    """Per-batch figures of a trace job: oneDNN ms by column, the wall time of the untraced
    timing run (`images_per_sec`; writing the log slows the traced run itself, while oneDNN
    times each primitive's execution alone), and the rest, 'outside' oneDNN (framework, other
    kernels, Python)."""
    onednn = res['onednn_ms']
    wall = 1000.0 * batch_size / images_per_sec
    return dict(wall_ms=round(wall, 2), onednn_ms={k: round(v, 2) for k, v in onednn.items()},
                outside_ms=round(wall - sum(onednn.values()), 2),
                traced_wall_ms=round(1000 * median(res['times']), 2))
