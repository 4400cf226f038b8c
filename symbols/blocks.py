"""The building blocks of Section 3.1 (Figure 1), one class per concept.

Each block takes its streams as positional inputs and is built with its input width, output
width and stride. Where the width (or resolution) changes, the identity shortcut becomes a
1x1 conv + BN projection; a multi-stream block projects every stream separately, before merging
(Table 1; authors' release: "each stream gets its own projection, and the merge averages the
projected streams"). "All the + operations ... are between BN and ReLU" (Section 4.2), so every
block ends with a ReLU after its sums.
"""
from mxnet.gluon import HybridBlock

from .layers import projection, relu, residual_branch


def _needs_projection(in_channels, channels, stride):
    return in_channels != channels or stride != 1


class ResidualBlock(HybridBlock):
    """Residual block, Eq. (1): x_{t+1} = ReLU(x_t + H_t(x_t)).

    The post-activation form of He et al. [7], as used by the paper and GluonCV's
    `cifar_resnet*_v1`. The shortcut is a projection where the width changes.
    """

    def __init__(self, in_channels, channels, stride=1, branch='basic', prefix=None):
        super().__init__(prefix=prefix)
        with self.name_scope():
            self.body = residual_branch(branch, in_channels, channels, stride, prefix='branch_')
            self.proj = (projection(in_channels, channels, stride, prefix='proj_')
                         if _needs_projection(in_channels, channels, stride) else None)

    def hybrid_forward(self, F, x):
        shortcut = self.proj(x) if self.proj is not None else x
        return relu(F, shortcut + self.body(x))


class InceptionLikeBlock(HybridBlock):
    """Inception-like block, Eq. (2): x_{2(t+1)} = ReLU(x_{2t} + H_{2t}(x_{2t}) + H_{2t+1}(x_{2t})).

    K residual branches read the same input; their outputs and the (projected) identity are
    summed. K=2 is the DILNet block of the paper.
    """

    def __init__(self, in_channels, channels, stride=1, branch='basic', branches=2, prefix=None):
        super().__init__(prefix=prefix)
        self.K = branches
        with self.name_scope():
            self.branches = []
            for k in range(branches):
                b = residual_branch(branch, in_channels, channels, stride,
                                    prefix='branch%d_' % (k + 1))
                self.register_child(b, 'branch%d' % (k + 1))
                self.branches.append(b)
            self.proj = (projection(in_channels, channels, stride, prefix='proj_')
                         if _needs_projection(in_channels, channels, stride) else None)

    def hybrid_forward(self, F, x):
        shortcut = self.proj(x) if self.proj is not None else x
        return relu(F, F.add_n(shortcut, *[b(x) for b in self.branches]))


class MergeAndRunBlock(HybridBlock):
    """Merge-and-run block, Eq. (3), generalised to K branches (Section 5).

    With K streams x_1..x_K and residual branches H_1..H_K:

        m   = (1/K) * sum_k P_k(x_k)                      (Merge; P_k = projection or identity)
        y_k = ReLU(m + H_k(x_k))                          (Run)

    i.e. [y_1..y_K] = ReLU(H(x) + M P(x)) with the K x K block matrix M of blocks I/K (Eq. 4),
    which is idempotent. `mapping='identity'` replaces M by I (no interaction between streams),
    the idempotent alternative of Section 5 / Table 5.

    `head` marks the last block of a network, whose output feeds the classifier as one tensor:
      'once': ReLU(m + sum_k H_k(x_k))  -- the merge counted once (authors' CIFAR release)
      'sum' : ReLU(sum_k (m + H_k(x_k))) -- the streams summed (authors' ImageNet release, and
              the two ResNets of Table 5 sharing one classifier)
      None  : the K streams are returned.

    `fused=True` runs the K branches as grouped convolutions over one K*d-channel tensor
    (Figure 5): it takes that single tensor and returns it as a one-element list (stream k = channels [k*d, (k+1)*d)) and
    computes the same function as the branch form, whose inputs/outputs are K separate tensors.
    """

    def __init__(self, in_channels, channels, stride=1, branch='basic', branches=2,
                 mapping='merge', head=None, fused=False, prefix=None):
        super().__init__(prefix=prefix)
        if mapping not in ('merge', 'identity'):
            raise ValueError("mapping must be 'merge' or 'identity', got %r" % (mapping,))
        if head not in (None, 'once', 'sum'):
            raise ValueError("head must be None, 'once' or 'sum', got %r" % (head,))
        if head == 'once' and mapping == 'identity':
            raise ValueError("head='once' counts the merge once; with the identity mapping "
                             "there is no merge: use head='sum'")
        self.K, self.mapping, self.head, self.fused = branches, mapping, head, fused
        # The merge's 1/K. None drops it, which is not the paper's function: only the step
        # benchmark (dmrnet.tools.bench.step_parts) does that, to price the scaling.
        self.merge_scale = 1.0 / branches
        project = _needs_projection(in_channels, channels, stride)
        with self.name_scope():
            if fused:
                self.branch = residual_branch(branch, in_channels, channels, stride,
                                              groups=branches, prefix='branch_')
                self.proj = (projection(branches * in_channels, branches * channels, stride,
                                        groups=branches, prefix='proj_') if project else None)
            else:
                self.branches, self.projs = [], []
                for k in range(branches):
                    b = residual_branch(branch, in_channels, channels, stride,
                                        prefix='branch%d_' % (k + 1))
                    self.register_child(b, 'branch%d' % (k + 1))
                    self.branches.append(b)
                    if project:
                        p = projection(in_channels, channels, stride, prefix='proj%d_' % (k + 1))
                        self.register_child(p, 'proj%d' % (k + 1))
                        self.projs.append(p)

    def hybrid_forward(self, F, *xs):
        if self.fused:
            return self._fused_forward(F, xs[0])
        if len(xs) != self.K:
            raise ValueError('MergeAndRunBlock with %d branches got %d streams' % (self.K, len(xs)))
        shortcuts = [p(x) for p, x in zip(self.projs, xs)] if self.projs else list(xs)
        hs = [b(x) for b, x in zip(self.branches, xs)]
        if self.mapping == 'merge':
            m = F.add_n(*shortcuts)
            if self.merge_scale is not None:
                m = m * self.merge_scale
            shortcuts = [m] * self.K
        if self.head == 'once':
            return [relu(F, F.add_n(shortcuts[0], *hs))]
        if self.head == 'sum':
            return [relu(F, F.add_n(*[s + h for s, h in zip(shortcuts, hs)]))]
        return [relu(F, s + h) for s, h in zip(shortcuts, hs)]

    def _fused_forward(self, F, x):
        shortcut = self.proj(x) if self.proj is not None else x
        # (N, K*d, H, W) -> (N, K, d, H, W): axis 1 indexes the streams.
        s = F.reshape(shortcut, shape=(0, -4, self.K, -1, -2))
        h = F.reshape(self.branch(x), shape=(0, -4, self.K, -1, -2))
        if self.mapping == 'merge':
            s = F.sum(s, axis=1, keepdims=True)
            if self.merge_scale is not None:
                s = s * self.merge_scale
            y = F.broadcast_add(h, s)
        else:
            y = h + s
        if self.head == 'once':
            y = s + F.sum(h, axis=1, keepdims=True)
        elif self.head == 'sum':
            y = F.sum(y, axis=1, keepdims=True)
        return [relu(F, F.reshape(y, shape=(0, -3, -2)))]


class IdentityStreamsBlock(MergeAndRunBlock):
    """K residual blocks side by side with no interaction: the merge-and-run block with the
    idempotent matrix M replaced by I (Section 5, "Idempotent mappings"; Table 5)."""

    def __init__(self, *args, **kwargs):
        kwargs['mapping'] = 'identity'
        super().__init__(*args, **kwargs)


def merge_and_run_matrix(K, d=1):
    """The transformation matrix M of the K-branch merge-and-run mapping (Eq. 4, Section 5):
    K x K blocks, each (1/K) * I_d."""
    import numpy as np
    return np.kron(np.full((K, K), 1.0 / K), np.eye(d))
