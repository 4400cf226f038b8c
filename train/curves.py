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


def plot_runs(run_dirs, out, labels=None, title=None):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if not labels:
        labels = [_label(run_dir) for run_dir in run_dirs]
        if len(set(labels)) < len(labels):  # same model twice: tell the runs apart by folder
            labels = [os.path.basename(os.path.normpath(run_dir)) for run_dir in run_dirs]
    fig, ax_loss = plt.subplots(figsize=(6.4, 4.6))
    ax_err = ax_loss.twinx()
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
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
