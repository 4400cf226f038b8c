"""Draw a network: a graphviz drawing when possible, otherwise a text summary.

    python -m dmrnet.tools.analysis.draw --model dmrnet14 [-o FILE]
                                         [--format auto|graph|blocks|layers] [--arg K=V ...]
    (the same: python tools/analysis/draw.py ...)

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

from dmrnet.utils.files import write_text  # (dmrnet.utils sets OMP threads before mxnet)

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
    from dmrnet.symbols.deploy import input_shape_for
    net = get_model(model, **kwargs)
    net.initialize()
    return net, input_shape_for(net)


def symbol_of(net):
    import mxnet as mx
    out = net(mx.sym.var('data'))
    return out[0] if isinstance(out, (list, tuple)) else out


def block_table(net, model):
    """One line per stem / block / classifier, from the Network's own description."""
    from dmrnet.symbols import count_params
    config = getattr(net, 'config', {})
    row = '%-22s %-28s %7s %12s %6s %10s'
    lines = ['%s: %s, %d trainable parameters' % (model, config.get('block', type(net).__name__),
                                                   count_params(net)),
             row % ('part', 'kind', 'streams', 'channels', 'stride', 'params')]
    for i, stem in enumerate(getattr(net, 'stems', [])):
        lines.append(row % ('stem%d' % (i + 1), config.get('stem_kind'), '',
                            '-> %d' % config.get('stem_channels', 0), '', count_params(stem)))
    channels_in = config.get('stem_channels', 0)
    blocks = iter(net.blocks)
    for stage, (count, width, stride) in enumerate(config.get('stages', [])):
        for position in range(count):
            block = next(blocks)
            streams = getattr(block, 'K', 1) if getattr(net, 'multi', False) else 1
            kind = type(block).__name__
            if getattr(block, 'head', None):
                kind += '(head=%s)' % block.head
            lines.append(row % ('stage%d_block%d' % (stage + 1, position + 1), kind, streams,
                                '%d -> %d' % (channels_in, width),
                                stride if position == 0 else 1, count_params(block)))
            channels_in = width
    for i, head in enumerate(getattr(net, 'heads', [])):
        lines.append(row % ('classifier%d' % (i + 1), 'pool+FC', '',
                            '%d -> %d' % (channels_in, config.get('classes', 0)), '',
                            count_params(head)))
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


def _parse_value(text):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {'true': True, 'false': False}.get(text.lower(), text)


def main(argv=None):
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n')[0])
    parser.add_argument('--model', required=True, help='preset or family name (get_model)')
    parser.add_argument('--arg', action='append', default=[], metavar='K=V',
                        help='extra keyword argument for get_model')
    parser.add_argument('-o', '--output')
    parser.add_argument('--format', choices=('auto', 'graph', 'blocks', 'layers'),
                        default='auto')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    malformed = [pair for pair in args.arg if '=' not in pair]
    if malformed:
        parser.error('--arg expects KEY=VALUE, got %s' % ', '.join(malformed))
    kwargs = {key: _parse_value(value)
              for key, value in (pair.split('=', 1) for pair in args.arg)}
    try:
        net, shape = build(args.model, **kwargs)
    except (ValueError, TypeError, KeyError) as e:
        # unknown preset/family or arguments it does not take: say so, no traceback
        parser.error('cannot build %s %s: %s' % (args.model, kwargs or '', str(e).split('\n')[0]))
    output_format = args.format
    if output_format == 'auto':
        output_format = 'graph' if graphviz_available() else 'blocks'
        if output_format == 'blocks':
            log.info('graphviz package or `dot` binary missing: writing a text summary')
    if output_format == 'graph':
        if not graphviz_available():
            parser.error('--format graph needs the graphviz Python package and the dot binary')
        log.info('wrote %s', draw_graph(net, shape, args.output or args.model + '.pdf'))
        return 0
    if output_format == 'blocks':
        text = block_table(net, args.model)
    else:
        text = layer_summary(net, shape)
    if args.output:
        write_text(args.output, text + '\n')
        log.info('wrote %s', args.output)
    else:
        print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
