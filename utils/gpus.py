"""python -m dmrnet.utils.gpus: dmrnet.utils.cuda's checks from the shell.

    python -m dmrnet.utils.gpus --check 0,1     exit 2 with one line when GPUs 0,1 cannot run the
                                                installed MXNet (the Makefile runs it before
                                                packing data for a GPU run)
    python -m dmrnet.utils.gpus --archs LIB     the CUDA machine code in a shared library
"""
import argparse
import sys

from dmrnet.utils import cuda
from dmrnet.utils.devices import parse_devices


def main(argv=None):
    """python -m dmrnet.utils.gpus --check GPUS: exit 2 with the one-line reason when GPUS
    cannot run the installed MXNet (the Makefile's check before packing data); --archs LIB lists
    a library's CUDA machine code."""
    parser = argparse.ArgumentParser(prog='python -m dmrnet.utils.gpus',
                                     description="dmrnet.utils.cuda's checks from the shell")
    parser.add_argument('--check', metavar='GPUS', help='e.g. "0,1" or "0-7"; empty: nothing')
    parser.add_argument('--archs', metavar='LIBRARY', help='a .so with CUDA fat binaries')
    args = parser.parse_args(argv)
    if args.archs:
        for (kind, sm), n in sorted(cuda.fatbin_archs(args.archs).items()):
            print('%s %s %d' % (kind, sm, n))
    if args.check is not None:
        try:
            ids = parse_devices(args.check)
        except ValueError:
            parser.exit(2, '--gpus %r: expected ids like "0", "0,1" or "0-7"\n' % args.check)
        problem = cuda.gpu_problem(ids)
        if problem:
            parser.exit(2, problem + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
