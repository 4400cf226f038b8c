"""Training curves in the style of the paper's Figure 7: training loss (dashed, left axis) and
test error (solid, right axis) against epochs, several runs overlaid.

    python train/curves.py runs/resnet56 runs/dmrnet56 --out fig7.png [--labels ResNet DMRNet]
"""
import argparse
import json
import logging
import os
import sys

log = logging.getLogger('dmrnet.curves')


def read_log(run_dir):
    path = os.path.join(run_dir, 'log.jsonl') if os.path.isdir(run_dir) else run_dir
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                records.append(json.loads(line))
    # A resumed run may have rewritten epochs: the last record of each epoch wins.
    by_epoch = {r['epoch']: r for r in records}
    return [by_epoch[e] for e in sorted(by_epoch)]


def _label(run_dir):
    try:
        with open(os.path.join(run_dir, 'last.json')) as f:
            return json.load(f)['model']
    except (OSError, ValueError, KeyError):
        return os.path.basename(os.path.normpath(run_dir))


def plot_runs(run_dirs, out, labels=None, title=None):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from dmrnet.symbols.atomic import save_figure
    if not labels:
        labels = [_label(d) for d in run_dirs]
        if len(set(labels)) < len(labels):  # same model twice: tell the runs apart by folder
            labels = [os.path.basename(os.path.normpath(d)) for d in run_dirs]
    fig, ax_loss = plt.subplots(figsize=(6.4, 4.6))
    ax_err = ax_loss.twinx()
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    from matplotlib.lines import Line2D
    # One legend entry per run (its colour) and one per line style, below the axes, so that
    # the legend never hides a curve however many runs are overlaid.
    handles = []
    for i, (d, name) in enumerate(zip(run_dirs, labels)):
        recs = read_log(d)
        if not recs:
            raise ValueError('%s has no finished epoch to plot' % d)
        ep = [r['epoch'] for r in recs]
        c = colors[i % len(colors)]
        ax_loss.plot(ep, [r['train_loss'] for r in recs], '--', color=c, lw=1.2)
        ax_err.plot(ep, [r['test_error'] for r in recs], '-', color=c, lw=1.5)
        handles.append(Line2D([], [], color=c, lw=3, label=name))
    handles += [Line2D([], [], color='0.3', ls='--', lw=1.2, label='training loss (left)'),
                Line2D([], [], color='0.3', ls='-', lw=1.5, label='test error (right)')]
    ax_loss.set_xlabel('epoch')
    ax_loss.set_ylabel('training loss (dashed)')
    ax_err.set_ylabel('test error % (solid)')
    ax_loss.set_ylim(bottom=0)
    ax_err.set_ylim(bottom=0)
    legend = ax_loss.legend(handles=handles, fontsize=7, loc='upper center', frameon=False,
                            bbox_to_anchor=(0.5, -0.13), ncol=min(len(handles), 3))
    if title:
        ax_loss.set_title(title)
    fig.tight_layout()
    save_figure(fig, out, bbox_extra_artists=[legend], bbox_inches='tight')
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('runs', nargs='+', help='run folders (with log.jsonl) or log.jsonl files')
    p.add_argument('-o', '--out', '--output', dest='out', default='curves.png',
                   help='PNG file to write')
    p.add_argument('--labels', nargs='+', default=None, help='one legend name per run')
    p.add_argument('--title', default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.labels and len(args.labels) != len(args.runs):
        p.error('--labels needs one name per run')
    try:
        plot_runs(args.runs, args.out, args.labels, args.title)
    except (OSError, ValueError, KeyError) as e:
        print('%s: error: %s' % (p.prog, e), file=sys.stderr)
        sys.exit(2)
    log.info('wrote %s', args.out)


if __name__ == '__main__':
    main()
