"""The report's figures: Figure 6 (error against average path length), Table 2 as error against
parameters, error against L for our own comparisons beside the paper's Table 2, and Figure
7-style training curves from the run folders. Matplotlib is loaded when a figure is drawn, MXNet
only for the curves (they read run folders through dmrnet.train)."""
import logging
import os

from dmrnet import paper
from dmrnet.paper.reference import table2_by_L
from dmrnet.tools.experiments.results import errors, matching, pathnet_groups
from dmrnet.tools.experiments.stats import mean_std
from dmrnet.tools.experiments.tables import LABELS, OWN_DATASETS
from dmrnet.utils.files import save_figure

log = logging.getLogger('dmrnet.report')

# The paper's data set that error_vs_L_plots sets our own comparisons beside: Table 2's CIFAR-10
# column, the one the paper discusses.
DEPTH_REFERENCE = 'cifar10'


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    fig.tight_layout()
    save_figure(fig, path)
    log.info('wrote %s', path)


def figure6(records, out_dir):
    """figure6.png: test error against the average path length (L + 3), a curve for 3 and one
    for 6 blocks per data set (Section 4.3); nothing without 'pathnet' runs."""
    curves = {}
    for dataset, blocks, _, length, measured in pathnet_groups(records):
        mean, std, _ = mean_std(measured)
        curves.setdefault((dataset, blocks), []).append((length, mean, std))
    if not curves:
        return []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for (dataset, blocks), points in sorted(curves.items()):
        lengths, means, stds = zip(*sorted(points))
        ax.errorbar(lengths, means, yerr=stds, marker='o', capsize=3,
                    label='%d blocks (%s)' % (blocks, LABELS.get(dataset, dataset)))
    ax.set_xlabel('average path length (L + 3)')
    ax.set_ylabel('test error (%)')
    ax.set_title('Figure 6')
    ax.legend()
    path = os.path.join(out_dir, 'figure6.png')
    _save(fig, path)
    return [path]


def table2_params_plots(records, numbers, out_dir):
    """Table 2 as error against parameters, one plot per dataset: ours (solid, error bars, at
    our runs' parameter counts) and the paper's means (dashed, at the authors' exact counts)."""
    paper_rows = numbers['table2_resnet_dilnet_dmrnet']
    written = []
    for dataset in paper.TABLE2_DATASETS + OWN_DATASETS:
        runs = matching(records, dataset=dataset, family=paper.FAMILIES, width=1, share=True)
        if not runs:
            continue
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        for column, family in enumerate(paper.FAMILIES):
            points = []
            for L in sorted({record['L'] for record in runs if record['family'] == family}):
                selected = matching(runs, family=family, L=L)
                params = [record['params'] for record in selected if record.get('params')]
                count = params[0] if params else \
                    paper.AUTHORS_TABLE2.get(L, (None,) * 3)[column]
                if count is None:
                    continue
                mean, std, _ = mean_std([record['test_error'] for record in selected])
                points.append((count / 1e6, mean, std))
            color = 'C%d' % column   # one colour per family, ours and the paper's alike
            if points:
                counts, means, stds = zip(*points)
                ax.errorbar(counts, means, yerr=stds, marker='o', capsize=3, color=color,
                            label='%s (ours)' % LABELS[family])
            if dataset in paper.TABLE2_DATASETS:
                ax.plot([paper.AUTHORS_TABLE2[row['L']][column] / 1e6 for row in paper_rows],
                        [row[dataset][family][0] for row in paper_rows], '--', color=color,
                        alpha=0.7, label='%s (paper)' % LABELS[family])
        ax.set_xlabel('parameters (M)')
        ax.set_ylabel('test error (%)')
        ax.set_title('Table 2, %s: error against parameters' % LABELS.get(dataset, dataset))
        ax.legend(fontsize=8)
        path = os.path.join(out_dir, 'table2_params_%s.png' % dataset)
        _save(fig, path)
        written.append(path)
    return written


def error_vs_L_plots(records, numbers, out_dir, datasets=OWN_DATASETS):
    """Test error against L for each family comparison of our own measured at two depths or
    more, as error_vs_L_<dataset>.png. Left, ours: the mean over seeds and a bar from the lowest
    to the highest seed. Right, the paper's Table 2 on CIFAR-10 at the same L: mean and std of
    its 5 runs. Two panels with their own error axes, because the data sets differ: what can be
    compared is the order of the families and how it changes with L, not the error levels."""
    by_L = table2_by_L(numbers)
    written = []
    for dataset in datasets:
        runs = matching(records, dataset=dataset, family=paper.FAMILIES, width=1, share=True)
        depths = sorted({record['L'] for record in runs if record.get('L') is not None})
        if len(depths) < 2:
            continue
        plt = _pyplot()
        fig, (ours, theirs) = plt.subplots(1, 2, figsize=(10, 4.4))
        measured = error_by_L(runs)
        # the families side by side at each L, so that their bars do not hide each other
        step = 0.015 * (depths[-1] - depths[0])
        for column, family in enumerate(paper.FAMILIES):
            color, shift = 'C%d' % column, (column - 1) * step
            points = measured[family]
            if points:
                Ls, means, lows, highs, counts = zip(*points)
                ours.errorbar([L + shift for L in Ls], means, marker='o', capsize=3, color=color,
                              yerr=[[mean - low for mean, low in zip(means, lows)],
                                    [high - mean for mean, high in zip(means, highs)]],
                              label='%s (seeds: %s)' % (LABELS[family],
                                                        ', '.join(map(str, counts))))
            printed = [(L, by_L[L][DEPTH_REFERENCE][family]) for L in depths if L in by_L]
            if printed:
                theirs.errorbar([L + shift for L, _ in printed], [mean for _, (mean, _) in printed],
                                yerr=[std for _, (_, std) in printed], marker='s', ls='--',
                                capsize=3, color=color, label=LABELS[family])
        ours.set_title('%s, ours: mean, bar from lowest to highest seed'
                       % LABELS.get(dataset, dataset), fontsize=9)
        theirs.set_title('%s, the paper (Table 2): mean \u00b1 std of 5 runs'
                         % LABELS[DEPTH_REFERENCE], fontsize=9)
        if not any(L in by_L for L in depths):
            theirs.text(0.5, 0.5, 'Table 2 has none of these L', ha='center',
                        transform=theirs.transAxes)
        for ax in (ours, theirs):
            ax.set_xticks(depths)
            ax.set_xlabel('L (ResNet-(2L+2), DILNet-(L+2), DMRNet-(L+2))')
            ax.set_ylabel('%s test error (%%)' % LABELS.get(
                dataset if ax is ours else DEPTH_REFERENCE, dataset))
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
        fig.suptitle('Test error against L on two different data sets: compare the order of the '
                     'families, not the levels', fontsize=10)
        path = os.path.join(out_dir, 'error_vs_L_%s.png' % dataset)
        _save(fig, path)
        written.append(path)
    return written


def error_by_L(records):
    """{family: [(L, mean, lowest, highest, runs), ...]} of the final test errors, by L."""
    points = {}
    for family in paper.FAMILIES:
        points[family] = []
        for L in sorted({record['L'] for record in matching(records, family=family)
                         if record.get('L') is not None}):
            measured = errors(records, family=family, L=L)
            mean, _, n = mean_std(measured)
            points[family].append((L, mean, min(measured), max(measured), n))
    return points


def figure7_stem(dataset, L, depths):
    """The file name, without .png, of the Figure 7-style curves at depth L of `depths`:
    figure7_<dataset> at the paper's Figure 7 depth where it was measured, else at the smallest
    depth (the one a comparison starts with, so that its figures keep their names when deeper
    runs are added), figure7_<dataset>_L<L> at the others."""
    headline = paper.FIGURE7_L if paper.FIGURE7_L in depths else min(depths)
    return 'figure7_%s' % dataset + ('' if L == headline else '_L%d' % L)


def figure7(records, out_dir, datasets=paper.TABLE2_DATASETS + OWN_DATASETS):
    """Figure 7-style curves (training loss and test error against epochs) by train/curves.py,
    per dataset at every L where ResNet and DMRNet both have runs with a log: the families' runs
    of the lowest seed that has both, and, where a family has several seeds at that L, every
    seed as mean and range (<stem>_seeds.png). File names: figure7_stem. Returns the paths."""
    try:
        # here, not at the top: they load MXNet, which the tables do without
        from dmrnet.train import rundir
        from dmrnet.train.curves import plot_runs, plot_seeds
    except ImportError:
        log.info('train/curves.py not importable: no Figure 7 curves')
        return []
    written = []
    for dataset in datasets:
        runs = [record for record in matching(records, dataset=dataset, family=paper.FAMILIES,
                                              width=1, share=True)
                if record.get('run_dir') and rundir.read_log(record['run_dir'])]
        depths = sorted({record['L'] for record in runs if record['family'] == 'resnet'} &
                        {record['L'] for record in runs if record['family'] == 'dmrnet'})
        for L in depths:
            at_L = matching(runs, L=L)
            stem = os.path.join(out_dir, figure7_stem(dataset, L, depths))
            title = '%s, L = %d' % (LABELS.get(dataset, dataset), L)
            written += _figure7_one_seed(at_L, stem + '.png', title, plot_runs)
            written += _figure7_seeds(at_L, stem + '_seeds.png', title, plot_seeds)
    return written


def _figure7_one_seed(runs, path, title, plot_runs):
    """The families' runs of the lowest seed that has ResNet and DMRNet, overlaid."""
    for seed in sorted({record.get('seed') for record in runs}, key=str):
        chosen = [(LABELS[family], matching(runs, family=family, seed=seed))
                  for family in paper.FAMILIES]
        chosen = [(label, selected[0]['run_dir']) for label, selected in chosen if selected]
        if {LABELS['resnet'], LABELS['dmrnet']} <= {label for label, _ in chosen}:
            plot_runs([run_dir for _, run_dir in chosen], path,
                      labels=[label for label, _ in chosen], title='%s, seed %s' % (title, seed))
            log.info('wrote %s', path)
            return [path]
    return []


def _figure7_seeds(runs, path, title, plot_seeds):
    """Every seed of each family as mean and range, where a family has more than one."""
    groups = [(LABELS[family], [record['run_dir'] for record in matching(runs, family=family)])
              for family in paper.FAMILIES]
    groups = [(label, run_dirs) for label, run_dirs in groups if run_dirs]
    if not any(len(run_dirs) > 1 for _, run_dirs in groups):
        return []
    try:
        plot_seeds(groups, path, title=title)
    except ValueError as e:   # seeds trained for different epochs: no common curve
        log.info('no seeds figure %s: %s', path, e)
        return []
    log.info('wrote %s', path)
    return [path]
