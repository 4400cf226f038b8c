"""The PyTorch jobs: the paper's DMRNet in PyTorch eager mode (torch_dmrnet.py), trained and run
as ours is, the reference of the framework comparison.

PyTorch runs with torch.set_num_threads equal to MXNet's OpenMP threads; inference in eval() +
inference_mode(); with autocast='bfloat16' in the spec, under torch.autocast (CPU, bfloat16). Both memory layouts are measured (`torch_variants`: NCHW and channels_last)
and the faster is the reference.
"""
import os

from dmrnet.tools.bench.flops import torch_flops
from dmrnet.tools.bench.frameworks import import_torch
from dmrnet.tools.bench.timing import choose_fastest_variant, median, peak_rss_mb, time_calls


def torch_kwargs(model, kwargs):
    """Arguments of the PyTorch DMRNet equivalent to one of our models, or None (none is)."""
    from dmrnet.symbols import registry
    family, full = registry.resolve(model, **kwargs)
    if family != 'dmrnet' or not full.get('share', True):
        return None
    return dict(L=full.get('L', 54), width=full.get('width', 1), branches=full.get('branches', 2),
                classes=full.get('classes', 10))


def torch_threads(torch):
    n = int(os.environ.get('OMP_NUM_THREADS', '0') or 0) or os.cpu_count()
    torch.set_num_threads(n)
    return dict(torch_threads=torch.get_num_threads(), torch_version=torch.__version__)


def setup(spec):
    """(torch, device, base RSS, result dict) for a PyTorch job; torch None when missing."""
    torch = import_torch()
    if torch is None:
        return None, None, None, dict(skipped='PyTorch is not installed (make bench installs it)')
    info = torch_threads(torch)
    base = peak_rss_mb()
    dev = (torch.device('cuda:%d' % spec['gpu']) if spec.get('gpu') is not None
           else torch.device('cpu'))
    if dev.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    return torch, dev, base, dict(variants={}, **info)


def network(spec, torch):
    from dmrnet.tools.bench.torch_dmrnet import DMRNet
    arguments = spec['torch_kwargs']
    torch.manual_seed(0)
    return DMRNet(L=arguments['L'], width=arguments['width'], branches=arguments['branches'],
                  classes=arguments['classes'])


def cpu_autocast(torch, spec):
    """torch.autocast to bfloat16 on the CPU for a spec with autocast='bfloat16' (PyTorch's
    oneDNN asks the kernel for AMX itself), else a context that does nothing."""
    import contextlib
    if spec.get('autocast') == 'bfloat16' and spec.get('gpu') is None:
        return torch.autocast('cpu', dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(torch, variant):
    return torch.channels_last if variant == 'channels_last' else torch.contiguous_format


def training_step(spec, torch, dev, variant):
    """(step, net): one training iteration of the PyTorch DMRNet in memory layout `variant`,
    SGD with Nesterov momentum as ours."""
    b = spec['batch_size']
    fmt = memory_format(torch, variant)
    net = network(spec, torch).to(dev).to(memory_format=fmt)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4,
                          nesterov=True)
    x = torch.randn(b, 3, 32, 32, device=dev).to(memory_format=fmt)
    y = torch.randint(0, 10, (b,), device=dev)
    loss_fn = torch.nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler('cuda') if spec.get('amp') and dev.type == 'cuda' else None

    def step():
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            with torch.autocast('cuda', dtype=torch.float16):
                loss = loss_fn(net(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            with cpu_autocast(torch, spec):
                loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
        if dev.type == 'cuda':
            torch.cuda.synchronize()
    return step, net


def inference_run(spec, torch, dev, variant, net):
    """(run, x, x1): eval-mode inference of `net` in memory layout `variant` on a batch x and
    a single image x1."""
    fmt = memory_format(torch, variant)
    net = net.to(dev).to(memory_format=fmt).eval()
    x = torch.randn(spec['batch_size'], 3, 32, 32, device=dev).to(memory_format=fmt)
    x1 = x[:1].contiguous(memory_format=fmt)

    def run(inp):
        with torch.inference_mode(), cpu_autocast(torch, spec):
            net(inp)
        if dev.type == 'cuda':
            torch.cuda.synchronize()
    return run, x, x1


def job_torch_train(spec):
    torch, dev, base, res = setup(spec)
    if torch is None:
        return res
    b = spec['batch_size']
    for variant in spec['torch_variants']:
        step, net = training_step(spec, torch, dev, variant)
        times = time_calls(step, spec['warmup'], spec['repeats'])
        res['variants'][variant] = dict(times=times, images_per_sec=b / median(times))
    choose_fastest_variant(res)
    res.update(params=sum(p.numel() for p in net.parameters()),
               peak_rss_mb=round(peak_rss_mb(), 1),
               peak_rss_delta_mb=round(peak_rss_mb() - base, 1))
    if dev.type == 'cuda':
        res['gpu_mem_used_mb'] = round(torch.cuda.max_memory_allocated(dev) / 2 ** 20, 1)
    return res


def job_torch_infer(spec):
    torch, dev, base, res = setup(spec)
    if torch is None:
        return res
    b = spec['batch_size']
    net = network(spec, torch)
    res['flops_per_image'] = torch_flops(net, torch, (1, 3, 32, 32))
    for variant in spec['torch_variants']:
        run, x, x1 = inference_run(spec, torch, dev, variant, net)
        times = time_calls(lambda: run(x), spec['warmup'], spec['repeats'])
        latency = time_calls(lambda: run(x1), max(spec['warmup'], 3),
                             max(4 * spec['repeats'], 10))
        res['variants'][variant] = dict(times=times, images_per_sec=b / median(times),
                                        latency_ms=1000 * median(latency))
    choose_fastest_variant(res)
    res.update(peak_rss_mb=round(peak_rss_mb(), 1),
               peak_rss_delta_mb=round(peak_rss_mb() - base, 1))
    return res
