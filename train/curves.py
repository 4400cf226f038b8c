"""Training curves in the style of the paper's Figure 7: training loss (dashed, left axis) and
test error (solid, right axis) against epochs, several runs overlaid.

    python train/curves.py runs/resnet56 runs/dmrnet56 --out fig7.png [--labels ResNet DMRNet]
"""
import argparse
import logging
import os
import sys

from dmrnet.train import rundir
from dmrnet.utils.files import save_figure

log = logging.getLogger('dmrnet.curves')


def _label(run_dir):
    return rundir.model_name(run_dir) or os.path.basename(os.path.normpath(run_dir))


def _pyplot():
    """pyplot on the file-only backend (no display here or on a training node), and the colour
    cycle both figures draw their networks in."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt, plt.rcParams['axes.prop_cycle'].by_key()['color']


def plot_runs(run_dirs, out, labels=None, title=None):
    plt, colors = _pyplot()
    if not labels:
        labels = [_label(run_dir) for run_dir in run_dirs]
        if len(set(labels)) < len(labels):  # same model twice: tell the runs apart by folder
            labels = [os.path.basename(os.path.normpath(run_dir)) for run_dir in run_dirs]
    fig, ax_loss = plt.subplots(figsize=(6.4, 4.6))
    ax_err = ax_loss.twinx()
    from matplotlib.lines import Line2D
    # One legend entry per run (its colour) and one per line style, below the axes, so that
    # the legend never hides a curve however many runs are overlaid.
    handles = []
    for i, (run_dir, name) in enumerate(zip(run_dirs, labels)):
        records = rundir.read_log(run_dir)
        if not records:
            raise ValueError('%s has no finished epoch to plot' % run_dir)
        epochs = [record['epoch'] for record in records]
        color = colors[i % len(colors)]
        ax_loss.plot(epochs, [record['train_loss'] for record in records], '--', color=color,
                     lw=1.2)
        ax_err.plot(epochs, [record['test_error'] for record in records], '-', color=color,
                    lw=1.5)
        handles.append(Line2D([], [], color=color, lw=3, label=name))
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


def plot_seeds(groups, out, title=None):
    """Several seeds per network: groups is [(label, [run_dir, ...]), ...]. Left, the training
    loss; right, the test error over the second half of training, where the families' final
    differences (tenths of a point) would vanish on the first epochs' scale. Each line is the
    mean over the seeds at that epoch, the band spans their lowest and highest value."""
    import numpy as np
    plt, colors = _pyplot()
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(9.6, 4.2))
    last, spans = 0, []
    for i, (label, run_dirs) in enumerate(groups):
        logs = [rundir.read_log(run_dir) for run_dir in run_dirs]
        epochs = [record['epoch'] for record in logs[0]]
        if not epochs or any([record['epoch'] for record in log] != epochs for log in logs):
            raise ValueError('the runs of %s did not log the same epochs: %s'
                             % (label, ', '.join(run_dirs)))
        last = max(last, epochs[-1])
        color = colors[i % len(colors)]
        for ax, key in ((ax_loss, 'train_loss'), (ax_err, 'test_error')):
            values = np.array([[record[key] for record in log] for log in logs])
            ax.plot(epochs, values.mean(axis=0), color=color, lw=1.6,
                    label='%s (%d seeds)' % (label, len(logs)))
            ax.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=color,
                            alpha=0.2, lw=0)
        spans.append((np.array(epochs), values.min(axis=0), values.max(axis=0)))
    first = last // 2 + 1
    ax_err.set_xlim(first - 0.2, last + 0.2)
    low = min(lo[x >= first].min() for x, lo, _ in spans)
    high = max(hi[x >= first].max() for x, _, hi in spans)
    pad = 0.15 * max(high - low, 0.1)
    ax_err.set_ylim(low - pad, high + pad)
    from matplotlib.ticker import MaxNLocator
    for ax in (ax_loss, ax_err):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_loss.set_ylim(bottom=0)
    ax_loss.set_xlabel('epoch')
    ax_err.set_xlabel('epoch (second half of training)')
    ax_loss.set_ylabel('training loss')
    ax_err.set_ylabel('test error %')
    ax_loss.legend(fontsize=8, frameon=False)
    if title:
        fig.suptitle(title + ': mean over seeds, band from lowest to highest')
    fig.tight_layout()
    save_figure(fig, out)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0])
    parser.add_argument('runs', nargs='+',
                        help='run folders (with log.jsonl) or log.jsonl files')
    parser.add_argument('-o', '--out', '--output', dest='out', default='curves.png',
                        help='PNG file to write')
    parser.add_argument('--labels', nargs='+', default=None, help='one legend name per run')
    parser.add_argument('--title', default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.labels and len(args.labels) != len(args.runs):
        parser.error('--labels needs one name per run')
    try:
        plot_runs(args.runs, args.out, args.labels, args.title)
    except (OSError, ValueError, KeyError) as e:
        print('%s: error: %s' % (parser.prog, e), file=sys.stderr)
        sys.exit(2)
    log.info('wrote %s', args.out)


if __name__ == '__main__':
    main()
