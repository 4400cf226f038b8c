"""Installable distribution `dmrnet`.

The repository keeps the layout users of MXNet's examples expect (symbols/, data/, train/,
tools/ at the top level) while the installed API lives under one namespace, `dmrnet.*`, so that
no generic top-level name such as `data` or `tools` lands in site-packages.
"""
import os

from setuptools import find_packages, setup

SUBPACKAGES = ('symbols', 'data', 'train', 'tools', 'utils', 'paper')
# Nested packages too (tools/bench, tools/experiments, ...), each under its folder's name.
PACKAGES = ['dmrnet.' + top for top in SUBPACKAGES] + [
    'dmrnet.%s.%s' % (top, sub) for top in SUBPACKAGES for sub in find_packages(top)]



def pinned(requirements_file):
    """The pins of a requirements file (its own lines; `-r` includes and comments left out), so
    that the extras and `make venv` install the same versions."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, requirements_file)) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


setup(
    name='dmrnet',
    version='0.1.0',
    description='MXNet/Gluon reproduction of Deep Convolutional Neural Networks with '
                'Merge-and-Run Mappings (Zhao et al.)',
    python_requires='>=3.8,<3.12',
    packages=PACKAGES,
    package_dir={'dmrnet.' + p: p for p in SUBPACKAGES},
    # an installed report and parameter table read the paper's numbers (paper/numbers.json)
    package_data={'dmrnet.paper': ['*.json']},
    # mxnet itself is an extra: CPU and GPU builds are different distributions that must not
    # be installed together.
    install_requires=[
        'numpy>=1.21,<1.24',          # mxnet 1.9.1 uses np.bool, removed in numpy 1.24
        'gluoncv==0.10.5.post0',
        'opencv-python>=4.5',
        'matplotlib>=3.5',
        'scipy>=1.8',
        'scikit-learn>=1.0',          # ships the handwritten-digits set used by the demo
        'tqdm>=4.60',
    ],
    extras_require={
        'cpu': pinned('requirements.txt'),
        # mxnet-cu112 and the CUDA 11 runtime wheels its libmxnet.so links (dmrnet.utils.cuda)
        'gpu': pinned('requirements-gpu.txt'),
        'test': ['pytest>=7'],
        # ONNX export (tools/export.py --onnx) with the versions that work beside mxnet 1.9.1:
        # a newer onnx brings numpy 2, which mxnet cannot import. ONNX Runtime to run the files:
        # pip install --no-deps onnxruntime==1.16.3 (README says why --no-deps).
        'onnx': ['onnx==1.14.1', 'protobuf==4.25.5'],
        'tensorboard': ['tensorboardX==2.6.5'],
    },
)
