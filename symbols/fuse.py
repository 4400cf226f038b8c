"""Parameter conversion between the branch form and the fused form of merge-and-run networks.

The fused block (Figure 5) holds the K branches as grouped convolutions: the grouped kernel is
the K per-branch kernels stacked along the output-channel axis, and its BatchNorm over K*d
channels is the K per-branch BatchNorms stacked. Gluon's structural parameter names differ only
in `branch`/`proj` versus `branch<k>`/`proj<k>`, so the mapping is by name.
"""
import re

import mxnet as mx

_FUSED_KEY = re.compile(r'(^|\.)(branch|proj)\.')


def _params(net):
    return net._collect_params_with_prefix()  # Gluon's structural names, as save_parameters uses


def branch_to_fused(src, dst):
    """Copy the parameters of a branch-form network `src` into the fused network `dst` of the
    same family and size; afterwards both compute the same function."""
    K = dst.K
    src_params, dst_params = _params(src), _params(dst)
    for key, param in dst_params.items():
        if _FUSED_KEY.search(key):
            parts = [src_params[_FUSED_KEY.sub(lambda m: '%s%s%d.' % (m.group(1), m.group(2), k + 1),
                                               key, count=1)].data() for k in range(K)]
            value = mx.nd.concat(*parts, dim=0)
        else:
            value = src_params[key].data()
        if value.shape != param.shape:
            raise ValueError('cannot map %s: source shape %s, fused shape %s (are both networks '
                             'built with the same arguments?)' % (key, value.shape, param.shape))
        param.set_data(value)


def fused_to_branch(src, dst):
    """The inverse of branch_to_fused: split the fused network `src` into branch-form `dst`."""
    K = src.K
    src_params = _params(src)
    for key, param in _params(dst).items():
        m = re.search(r'(^|\.)(branch|proj)(\d+)\.', key)
        if m:
            k = int(m.group(3)) - 1
            fused = src_params[key[:m.start()] + m.group(1) + m.group(2) + '.' + key[m.end():]].data()
            step = fused.shape[0] // K
            param.set_data(fused[k * step:(k + 1) * step])
        else:
            param.set_data(src_params[key].data())
