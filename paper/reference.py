"""The paper's numbers as printed (Tables 2-5, path lengths, the training recipe), from
numbers.json beside this file: what the experiment report compares our results with and what
the parameter table (dmrnet.tools.analysis.params) shows as printed."""
import json
import os

PAPER_NUMBERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'numbers.json')


def paper_numbers(path=None):
    """The numbers from `path` (default: numbers.json of this package). Raises
    FileNotFoundError for a file that does not exist."""
    with open(path or PAPER_NUMBERS) as f:
        return json.load(f)


def table2_by_L(numbers):
    """Table 2's rows keyed by L: {L: {'cifar10': {'resnet': [mean, std], ...}, ...}}."""
    return {row['L']: row for row in numbers['table2_resnet_dilnet_dmrnet']}
