"""Draw a network: a graphviz drawing when possible, otherwise a text summary.

    python tools/draw.py --model dmrnet14 [-o FILE] [--format auto|graph|blocks|layers] [--K V ...]

auto (default): `mx.viz.plot_network` on the network's symbol, rendered with graphviz, when both
the `graphviz` Python package and the `dot` binary exist (FILE: .pdf/.png/.svg, default
MODEL.pdf); otherwise the per-block table. 'blocks': one line per block (kind, streams,
in -> out channels, stride, parameters) -- short enough to read for a 110-layer net. 'layers':
`mx.viz.print_summary`, every layer with its output shape and parameters. Text goes to FILE when
given, else to stdout. Extra family arguments: `--arg L=12 --arg width=2`.
"""
import argparse
import contextlib
import io
import logging
import os
import shutil
import sys

log = logging.getLogger('dmrnet.draw')


def graphviz_available():
    """The Python package renders through the `dot` binary; both are needed."""
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return shutil.which('dot') is not None


def build(model, **kwargs):
    from dmrnet.symbols import get_model
    from dmrnet.symbols.export import input_shape_for
    net = get_model(model, **kwargs)
    net.initialize()
    return net, input_shape_for(net)


def symbol_of(net):
    import mxnet as mx
    out = net(mx.sym.var('data'))
    return out[0] if isinstance(out, (list, tuple)) else out


def _count(block):
    import numpy as np
    return int(sum(np.prod(p.shape) for p in block.collect_params().values()
                   if p.grad_req != 'null'))


def block_table(net, model):
    """One line per stem / block / classifier, from the Network's own description."""
    cfg = getattr(net, 'config', {})
    lines = ['%s: %s, %d trainable parameters' % (model, cfg.get('block', type(net).__name__),
                                                   _count(net)),
             '%-22s %-28s %7s %12s %6s %10s' % ('part', 'kind', 'streams', 'channels',
                                               'stride', 'params')]
    for i, s in enumerate(getattr(net, 'stems', [])):
        lines.append('%-22s %-28s %7s %12s %6s %10d' % ('stem%d' % (i + 1), cfg.get('stem_kind'),
                                                        '', '-> %d' % cfg.get('stem_channels', 0),
                                                        '', _count(s)))
    cin = cfg.get('stem_channels', 0)
    stages = cfg.get('stages', [])
    idx = 0
    for s, (count, width, stride) in enumerate(stages):
        for b in range(count):
            blk = net.blocks[idx]
            idx += 1
            streams = getattr(blk, 'K', 1) if getattr(net, 'multi', False) else 1
            kind = type(blk).__name__
            if getattr(blk, 'head', None):
                kind += '(head=%s)' % blk.head
            lines.append('%-22s %-28s %7d %12s %6d %10d'
                         % ('stage%d_block%d' % (s + 1, b + 1), kind, streams,
                            '%d -> %d' % (cin, width), stride if b == 0 else 1, _count(blk)))
            cin = width
    for i, h in enumerate(getattr(net, 'heads', [])):
        lines.append('%-22s %-28s %7s %12s %6s %10d' % ('classifier%d' % (i + 1), 'pool+FC', '',
                                                        '%d -> %d' % (cin, cfg.get('classes', 0)),
                                                        '', _count(h)))
    return '\n'.join(lines)


def layer_summary(net, shape):
    import mxnet as mx
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        mx.viz.print_summary(symbol_of(net), shape={'data': shape})
    return buf.getvalue()


def draw_graph(net, shape, out):
    import mxnet as mx
    dot = mx.viz.plot_network(symbol_of(net), shape={'data': shape}, hide_weights=True,
                              node_attrs={'fixedsize': 'false'})
    base, ext = os.path.splitext(out)
    dot.format = ext.lstrip('.') or 'pdf'
    return dot.render(filename=base, cleanup=True)


def _parse_value(v):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {'true': True, 'false': False}.get(v.lower(), v)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', required=True, help='preset or family name (get_model)')
    p.add_argument('--arg', action='append', default=[], metavar='K=V',
                   help='extra keyword argument for get_model')
    p.add_argument('-o', '--output')
    p.add_argument('--format', choices=('auto', 'graph', 'blocks', 'layers'), default='auto')
    a = p.parse_args(argv)
    from dmrnet.symbols import runtime  # noqa: F401  (sets OMP_NUM_THREADS before mxnet loads)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    bad = [s for s in a.arg if '=' not in s]
    if bad:
        p.error('--arg expects KEY=VALUE, got %s' % ', '.join(bad))
    kwargs = dict((k, _parse_value(v)) for k, v in (s.split('=', 1) for s in a.arg))
    try:
        net, shape = build(a.model, **kwargs)
    except (ValueError, TypeError, KeyError) as e:
        # unknown preset/family or arguments it does not take: say so, no traceback
        p.error('cannot build %s %s: %s' % (a.model, kwargs or '', str(e).split('\n')[0]))
    fmt = a.format
    if fmt == 'auto':
        fmt = 'graph' if graphviz_available() else 'blocks'
        if fmt == 'blocks':
            log.info('graphviz package or `dot` binary missing: writing a text summary')
    if fmt == 'graph':
        if not graphviz_available():
            p.error('--format graph needs the graphviz Python package and the dot binary')
        log.info('wrote %s', draw_graph(net, shape, a.output or a.model + '.pdf'))
        return 0
    text = block_table(net, a.model) if fmt == 'blocks' else layer_summary(net, shape)
    if a.output:
        with open(a.output, 'w') as f:
            f.write(text + '\n')
        log.info('wrote %s', a.output)
    else:
        print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
