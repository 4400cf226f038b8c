"""FLOPs per image: counted from an MXNet symbol graph, or from a PyTorch module's layers.

Both count 2 x the multiply-adds of convolutions and fully connected layers; element-wise work
(BatchNorm, ReLU, sums, pooling) is not counted. A training step counts 3x the forward pass.
"""
import json


def count_flops(sym, input_shape):
    """Forward FLOPs per image of a symbol: 2 x multiply-adds of Convolution, Deconvolution and
    FullyConnected nodes (fused oneDNN nodes and element-wise work are not counted).

    Returns dict(flops, conv_flops, fc_flops, macs)."""
    internals = sym.get_internals()
    arg_shapes, out_shapes, _ = internals.infer_shape(data=tuple(input_shape))
    shapes = dict(zip(internals.list_arguments(), arg_shapes))
    shapes.update(zip(internals.list_outputs(), out_shapes))
    nodes = json.loads(sym.tojson())['nodes']
    conv = fc = 0
    for node in nodes:
        op = node['op']
        if op not in ('Convolution', 'FullyConnected', 'Deconvolution'):
            continue
        weight = nodes[node['inputs'][1][0]]['name']
        w = shapes.get(weight)
        out = shapes.get(node['name'] + '_output')
        if w is None or out is None:
            raise ValueError('cannot infer the shapes of %s' % node['name'])
        if op == 'FullyConnected':
            fc += out[0] * w[0] * prod(w[1:])
        elif op == 'Convolution':
            # weight (O, C/groups, kh, kw); each output element costs C/groups*kh*kw MACs
            conv += prod(out) * prod(w[1:])
        else:  # Deconvolution: every input element scatters into O/groups*kh*kw outputs
            data_in = shapes.get(nodes[node['inputs'][0][0]]['name'] + '_output',
                                 shapes.get(nodes[node['inputs'][0][0]]['name']))
            conv += prod(data_in) * prod(w[1:])
    n = input_shape[0]
    return dict(flops=2 * (conv + fc) // n, conv_flops=2 * conv // n, fc_flops=2 * fc // n,
                macs=(conv + fc) // n)


def torch_flops(net, torch, shape):
    """Forward FLOPs per image of a torch module: 2 x Conv2d/Linear multiply-adds (hooks)."""
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            total[0] += out.numel() * (mod.in_channels // mod.groups) * prod(mod.kernel_size)
        elif isinstance(mod, torch.nn.Linear):
            total[0] += out.numel() * mod.in_features
    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.inference_mode():
        net(torch.zeros(shape))
    for h in handles:
        h.remove()
    return 2 * total[0] // shape[0]


def gflops(flops_per_image, images_per_sec):
    """Achieved GFLOP/s."""
    return flops_per_image * images_per_sec / 1e9


def prod(xs):
    p = 1
    for x in xs:
        p *= int(x)
    return p
