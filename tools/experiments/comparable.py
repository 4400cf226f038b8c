"""Whether a table's runs can be compared as equals: the sentences the report adds to a table
whose runs trained with different recipes, or whose BatchNorm saw another number of images per
device than the authors'."""
import collections
import json

from dmrnet import paper


def recipe_note(records):
    """A sentence naming the runs of a table trained with another recipe than most of its
    runs (per data set; the runner refuses to make such a mix, but results files can be
    combined by hand), or None. Runs recorded before recipes were recorded are not judged."""
    marked = []
    for dataset in sorted({record.get('dataset') for record in records}, key=str):
        judged = [record for record in records
                  if record.get('dataset') == dataset and record.get('recipe')]
        if len(judged) < 2:
            continue
        key = (lambda record: json.dumps(record['recipe'], sort_keys=True))
        usual = json.loads(collections.Counter(map(key, judged)).most_common(1)[0][0])
        for record in judged:
            differ = ['%s %s (others %s)' % (field, record['recipe'].get(field), value)
                      for field, value in sorted(usual.items())
                      if record['recipe'].get(field) != value]
            if differ:
                marked.append('%s: %s' % (record.get('name') or record.get('run_dir'),
                                          ', '.join(differ)))
    if not marked:
        return None
    return ('NOT COMPARABLE: %d run(s) trained with another recipe than the rest of this table '
            '(%s)' % (len(marked), '; '.join(marked)))


def batchnorm_note(records):
    """A sentence for the tables compared with the paper when runs on its datasets normalised
    BatchNorm over another number of images per device than the authors' 32 (one GPU with the
    whole batch of 64, say): the statistics, and so the results, are not quite theirs."""
    batches = {}
    for record in records:
        batch = record.get('batch_per_device')
        if record.get('dataset') in paper.TABLE2_DATASETS and batch not in (
                None, paper.AUTHORS_IMAGES_PER_DEVICE):
            batches[batch] = batches.get(batch, 0) + 1
    if not batches:
        return ''
    return ('BatchNorm batch deviates from the authors\' %d images per device in %s'
            % (paper.AUTHORS_IMAGES_PER_DEVICE, ', '.join('%d run(s) with %d' % (n, batch)
                                                          for batch, n in sorted(batches.items()))))
