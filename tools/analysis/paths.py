"""Exact path-length distributions of ResNets, DILNets and DMRNets (Section 3.2, Figure 3).

    python -m dmrnet.tools.analysis.paths --L 54 --B 2 [--json] [--plot out.png]
    python -m dmrnet.tools.analysis.paths --figure3 out.png   # Figure 3: L' = 9 and 24, B = 2
    python -m dmrnet.tools.analysis.paths --pathnet --L 27    # Figure 6 nets: L + 3
    (the same: python tools/analysis/paths.py ...)

A *path* is a sequence of connected residual branches and identity mappings from the input to
the output (Section 3.2). Every residual branch contributes B layers; the first conv and the FC
add 2; projection shortcuts count 0 (the paper: "without counting projections"). Each network is
a chain of blocks, and each block is a small graph from its input streams to its output streams:

    ResNet  (2L' blocks, 1 stream):   skip (+0) | branch (+B)
    DILNet  (L' blocks, 1 stream):    skip (+0) | branch 1 (+B) | ... | branch K (+B)
    DMRNet  (L' blocks, K streams):   stream i -> stream j through the merge (+0), any i, j;
                                      stream k -> stream k through branch k (+B)
    identity (Table 5, K streams):    stream k -> stream k by skip (+0) or branch k (+B)

Here L' = L/2 with L as in Table 2 (so the ResNet has L residual blocks). The stem output feeds
every stream of the first block (one edge per stream) and the streams of the last block are
joined by summing them (one edge per stream); the count of paths is then a product of per-block
transfer matrices, which `distribution` evaluates exactly, by dynamic programming over the blocks,
with Python integers (a ResNet with L=96 has 2^96 paths). (The stem's K edges into the first
merge-and-run block double the DMRNet count to 2 * 3^L'; treating them as one edge halves every
count and changes neither the shape nor the moments of the distribution.)

Closed forms (paper, Section 3.2) and the convention under which they hold exactly:
  ResNet  mean B*L' + 2,      var B^2 L'/2,          2^(2L') paths
  DILNet  mean 2B/3*L' + 2,   var 2B^2 L'/9,         3^L' paths             (K = 2)
  DMRNet  mean B/3*L' + 2,    var 2B^2 L'/9,         2 * 3^L' paths         (K = 2, 'sum' join)
The DMRNet form holds exactly when the last block is a full merge-and-run block whose two stream
outputs are summed (Figure 2c; `head='sum'`): the all-ones vector is an eigenvector of every
block's transfer matrix, with eigenvalue (K + x^B) — K merge edges and one branch edge into each
output — so every block adds B/(K+1) on average. The authors' CIFAR code instead feeds the
classifier with ReLU(m + H1 + H2) (merge counted once, `head='once'`): the last block then has the
generating function K(1 + x^B) and adds B/2, so the mean becomes B/3*(L'-1) + B/2 + 2, i.e. B/6
longer than the closed form (0.33 layers for B = 2). `--head once` shows that variant.

Figure 6 nets ('pathnet', Section 4.3) count the two projection shortcuts as 1 layer each, as the
paper does there; their mean is L + 3 for both 3 and 6 blocks (`pathnet_mean`).
"""
import argparse
import json
import logging
import math
import sys
from fractions import Fraction

from dmrnet.paper import FAMILIES, LABELS
from dmrnet.utils.files import save_figure

log = logging.getLogger('dmrnet.paths')


# ---------------------------------------------------------------------------------------------
# Block graphs: a block is (number of input streams, number of output streams, edges), an edge
# being (input stream, output stream, length).

def residual_block(B):
    return 1, 1, [(0, 0, 0), (0, 0, B)]


def inception_block(B, K=2):
    return 1, 1, [(0, 0, 0)] + [(0, 0, B)] * K


def merge_and_run_block(B, K=2, head=None):
    """head=None: K outputs. 'once': one output, ReLU(m + sum_k H_k) -- K merge edges and K
    branch edges into it (authors' CIFAR head)."""
    if head == 'once':
        return K, 1, [(i, 0, 0) for i in range(K)] + [(k, 0, B) for k in range(K)]
    return K, K, [(i, j, 0) for i in range(K) for j in range(K)] + [(k, k, B) for k in range(K)]


def identity_streams_block(B, K=2):
    return K, K, [(k, k, 0) for k in range(K)] + [(k, k, B) for k in range(K)]


def network_blocks(family, L, B=2, K=2, head='sum'):
    """The chain of block graphs of a network. L as in Table 2: L' = L/2 two-branch blocks, or
    L residual blocks for the ResNet (for K branches: L/K blocks)."""
    if L % K:
        raise ValueError('L=%d must be a multiple of the number of branches K=%d' % (L, K))
    block_count = L // K
    if family == 'resnet':
        return [residual_block(B)] * L
    if family == 'dilnet':
        return [inception_block(B, K)] * block_count
    if family == 'dmrnet':
        if head == 'once':
            return ([merge_and_run_block(B, K)] * (block_count - 1)
                    + [merge_and_run_block(B, K, 'once')])
        return [merge_and_run_block(B, K)] * block_count
    if family == 'identity':
        return [identity_streams_block(B, K)] * block_count
    raise ValueError('unknown family %r: use one of %s' % (family, FAMILIES + ('identity',)))


# ---------------------------------------------------------------------------------------------
# Exact distributions.

def _shift_add(total, dist, shift):
    for length, count in dist.items():
        total[length + shift] = total.get(length + shift, 0) + count


def chain_distribution(blocks, extra=2):
    """{length: number of paths} through a chain of blocks. The source feeds every input stream
    of the first block, every output stream of the last block feeds the sink; `extra` layers
    (first conv + FC) are on every path. Dynamic programming: per stream, the distribution of the
    lengths of the partial paths that reach it."""
    streams = [{0: 1} for _ in range(blocks[0][0])]
    for inputs, outputs, edges in blocks:
        if inputs != len(streams):
            raise ValueError('block with %d inputs after a block with %d outputs'
                             % (inputs, len(streams)))
        following = [dict() for _ in range(outputs)]
        for source, target, length in edges:
            _shift_add(following[target], streams[source], length)
        streams = following
    total = {}
    for stream in streams:
        _shift_add(total, stream, extra)
    return dict(sorted(total.items()))


def distribution(family, L, B=2, K=2, head='sum'):
    return chain_distribution(network_blocks(family, L, B, K, head))


def brute_force_lengths(blocks, extra=2):
    """Every path's length, by enumerating the paths one by one (for tests, small nets only)."""
    lengths = []

    def walk(position, stream, length):
        if position == len(blocks):
            lengths.append(length + extra)
            return
        for source, target, edge_length in blocks[position][2]:
            if source == stream:
                walk(position + 1, target, length + edge_length)

    for stream in range(blocks[0][0]):
        walk(0, stream, 0)
    return lengths


def moments(dist):
    """(number of paths, exact mean, exact variance) as (int, Fraction, Fraction)."""
    paths = sum(dist.values())
    mean = Fraction(sum(length * count for length, count in dist.items()), paths)
    var = Fraction(sum(length * length * count for length, count in dist.items()), paths) \
        - mean * mean
    return paths, mean, var


def closed_form(family, L, B=2, K=2):
    """The paper's closed-form mean (Section 3.2, generalised to K branches: every block adds
    B*(its branches)/(its edges)) and the variance that goes with it, exact."""
    block_count = L // K
    if family == 'resnet':
        return Fraction(B * L, 2) + 2, Fraction(B * B * L, 4)
    if family == 'dilnet':   # per block: K of K+1 edges carry B
        branch_share = Fraction(K, K + 1)
    elif family == 'dmrnet':  # per output stream: 1 of K+1 incoming edges carries B
        branch_share = Fraction(1, K + 1)
    elif family == 'identity':
        branch_share = Fraction(1, 2)
    else:
        raise ValueError(family)
    return (B * branch_share * block_count + 2,
            B * B * branch_share * (1 - branch_share) * block_count)


def pathnet_blocks(L, blocks=3, count_projections=True):
    """Figure 6 nets (Section 4.3): one plain net of depth 2L+2 cut into 3 or 6 residual blocks
    (branches of 2L/3 or L/3 layers). The two shortcuts where the width grows are 1x1
    projections, counted as one layer each when `count_projections` (the paper's counting)."""
    if blocks not in (3, 6) or (2 * L) % blocks:
        raise ValueError('pathnet: blocks must be 3 or 6 and 2L divisible by it')
    branch = 2 * L // blocks
    per_stage = blocks // 3
    chain = []
    for block in range(blocks):
        first_of_stage = block % per_stage == 0 and block >= per_stage
        skip = 1 if (first_of_stage and count_projections) else 0
        chain.append((1, 1, [(0, 0, skip), (0, 0, branch)]))
    return chain


def pathnet_mean(L, blocks=3, count_projections=True):
    """Average path length of a Figure 6 net; equals L + 3 with projections counted."""
    return moments(chain_distribution(pathnet_blocks(L, blocks, count_projections)))[1]


def analyse(L, B=2, K=2, head='sum', families=FAMILIES):
    """Per family: paths, mean, std, the closed form, and the distribution."""
    result = {}
    for family in families:
        dist = distribution(family, L, B, K, head)
        paths, mean, var = moments(dist)
        closed_mean, closed_var = closed_form(family, L, B, K)
        result[family] = dict(
            blocks=len(network_blocks(family, L, B, K, head)), paths=paths, mean=float(mean),
            std=math.sqrt(var), mean_exact=str(mean), closed_form_mean=float(closed_mean),
            closed_form_std=math.sqrt(closed_var),
            matches_closed_form=(mean == closed_mean and var == closed_var),
            distribution={str(length): count for length, count in dist.items()})
    return result


# ---------------------------------------------------------------------------------------------
# Output.

def format_table(result, L, B):
    lines = ['Path lengths, L=%d (L\'=%d), B=%d' % (L, L // 2, B),
             '%-8s %6s %12s %10s %8s %12s %8s' % ('family', 'blocks', 'paths', 'mean', 'std',
                                                  'closed form', 'match')]
    for family, row in result.items():
        lines.append('%-8s %6d %12.4g %10.4f %8.4f %12.4f %8s'
                     % (LABELS.get(family, family), row['blocks'], row['paths'], row['mean'],
                        row['std'], row['closed_form_mean'],
                        'yes' if row['matches_closed_form'] else 'NO'))
    return '\n'.join(lines)


def plot_distributions(ax, result, title=None):
    """Histogram-like curves of the fraction of paths of each length, one per family."""
    for family, row in result.items():
        lengths = [int(length) for length in row['distribution']]
        fractions = [count / row['paths'] for count in row['distribution'].values()]
        ax.plot(lengths, fractions, marker='.', label='%s (%.1f \u00b1 %.1f)'
                % (LABELS.get(family, family), row['mean'], row['std']))
    ax.set_xlabel('path length')
    ax.set_ylabel('fraction of paths')
    if title:
        ax.set_title(title)
    ax.legend()


def save_plot(panels, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (result, title) in zip(axes[0], panels):
        plot_distributions(ax, result, title)
    fig.tight_layout()
    save_figure(fig, out)
    log.info('wrote %s', out)


def figure3(out, B=2):
    """Figure 3: the paper's L there is L' (ResNet 2L' blocks): L'=9 and L'=24, i.e. Table 2's
    L=18 and L=48."""
    panels = [(analyse(2 * Lp, B), "L = %d (L'=%d; Table 2 L=%d)" % (Lp, Lp, 2 * Lp))
              for Lp in (9, 24)]
    save_plot(panels, out)
    return panels


def main(argv=None):
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n')[0])
    parser.add_argument('--L', type=int, default=54, help='L as in Table 2 (L\' = L/2)')
    parser.add_argument('--B', type=int, default=2, help='layers per residual branch')
    parser.add_argument('--branches', type=int, default=2, help='K, branches per block')
    parser.add_argument('--head', choices=('sum', 'once'), default='sum',
                        help="DMRNet join: 'sum' of the stream outputs (paper's counting) or the "
                             "authors' CIFAR head 'once'")
    parser.add_argument('--identity', action='store_true', help='also the Table 5 identity network')
    parser.add_argument('--json', action='store_true')
    parser.add_argument('--plot', metavar='PNG')
    parser.add_argument('--figure3', metavar='PNG', help="draw Figure 3 (L'=9 and 24) and exit")
    parser.add_argument('--pathnet', action='store_true',
                        help='average path lengths of the Figure 6 nets (3 and 6 blocks) at --L')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    # path lengths are a property of the block graph only, so any L divisible by K works here
    # (the real networks also need L/(3K) blocks per stage; see dmrnet.symbols)
    if args.L < 1 or args.B < 1 or args.branches < 1:
        parser.error('--L, --B and --branches must be positive integers')
    if args.L % args.branches and not (args.pathnet or args.figure3):
        parser.error('--L %d must be a multiple of --branches %d (L/K two-branch blocks)'
                     % (args.L, args.branches))
    if args.pathnet and ((2 * args.L) % 3 or (2 * args.L) % 6):
        parser.error('--pathnet: --L %d must be a multiple of 3 (branches of 2L/3 and L/3 layers)'
                     % args.L)
    if args.figure3:
        panels = figure3(args.figure3, args.B)
        for (result, title), Lp in zip(panels, (9, 24)):
            print(title)
            print(format_table(result, 2 * Lp, args.B))
        return 0
    if args.pathnet:
        for blocks in (3, 6):
            mean = pathnet_mean(args.L, blocks)
            plain = pathnet_mean(args.L, blocks, count_projections=False)
            print('pathnet L=%d, %d blocks: average path length %s (projections counted; %s '
                  'without)' % (args.L, blocks, mean, plain))
        return 0
    families = FAMILIES + (('identity',) if args.identity else ())
    result = analyse(args.L, args.B, args.branches, args.head, families)
    if args.json:
        json.dump(dict(L=args.L, B=args.B, branches=args.branches, head=args.head, families=result),
                  sys.stdout, indent=1)
        sys.stdout.write('\n')
    else:
        print(format_table(result, args.L, args.B))
    if args.plot:
        save_plot([(result, 'L = %d, B = %d' % (args.L, args.B))], args.plot)
    return 0


if __name__ == '__main__':
    sys.exit(main())
