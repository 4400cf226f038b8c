"""What a resumed run keeps from the run it continues, and what it may change.

Every checkpoint and summary.json records the whole configuration its run was started with
(`args`). A resume continues that run: the flags that change what it computes must be the
recorded ones, or the folder would hold one run trained with two recipes (the report would then
compare it as if it had one). On the command line a flag that is not given takes its recorded
value (`inherit`), so `--resume DIR` alone continues the run as it was; a flag given with another
value is refused in one line naming each one and its recorded value (`differences`). The one
change allowed is a deliberate extension: more --epochs than recorded, kept in the run's record
as `extended` (the lr schedule of a `fractions` recipe moves with it, which is why it must be
asked for).

Flags outside RESULT_FIELDS do not change the result and may differ: where the data is
(--data-dir, packs by path), logging and progress, TensorBoard, checkpoint frequency, which
devices (as long as each device sees the same batch), the KVStore.
"""
from dmrnet.train.errors import flag
from dmrnet.utils.devices import device_count

# TrainConfig fields whose value changes what a run computes.
# The training recipe among them: what runs compared in one table must share.
RECIPE_FIELDS = ('augmentation', 'mean', 'std', 'shard_per_device', 'amp', 'batch_size',
                 'epochs', 'optimizer', 'lr', 'lr_steps', 'lr_schedule', 'lr_factor', 'wd',
                 'momentum', 'max_batches', 'max_val_batches')
RESULT_FIELDS = ('model', 'L', 'width', 'branches', 'fused', 'blocks', 'dataset',
                 'seed') + RECIPE_FIELDS
# The run's own choices that the command line leaves to the recorded run when not given.
INHERITED = RESULT_FIELDS + ('gpus', 'cpus', 'kv_store', 'checkpoint_every', 'log_interval')


def _normal(value):
    """A value as the JSON record stores it (tuples read back as lists; True as --amp auto)."""
    if isinstance(value, tuple):
        return list(value)
    return value


def _shown(value):
    if isinstance(value, (list, tuple)):
        return ','.join('%g' % v if isinstance(v, float) else str(v) for v in value)
    if value is None:
        return 'none'
    return '%g' % value if isinstance(value, float) else str(value)


def _amp(value):
    return {True: 'auto', None: False}.get(value, value)


def per_device_batch(args):
    """Images each device sees in a step (workers aside), from recorded or current args."""
    return args['batch_size'] // device_count(args.get('gpus'), args.get('cpus'))


def inherit(config, recorded, given):
    """The config a command-line resume trains with: the flags of `given` (the fields the user
    set on the command line) as given, every other run-defining field as `recorded` (the
    checkpoint's args). Fields the record lacks (older runs) keep the config's value."""
    changes = {field: (tuple(recorded[field]) if isinstance(recorded[field], list)
                       else recorded[field])
               for field in INHERITED if field not in given and field in recorded}
    return config.replace(**changes)


def differences(recorded, config, trained_epochs):
    """[(flag, recorded value, value now)] of the result-changing fields where `config` departs
    from the `recorded` args, with more epochs than recorded (an extension) left out, and the
    per-device batch compared rather than the devices. `trained_epochs`: epochs the checkpoint
    has done (fewer than those cannot be asked for)."""
    found = []
    for field in RESULT_FIELDS:
        if field not in recorded:
            continue
        now, then = _normal(getattr(config, field)), _normal(recorded[field])
        if field == 'amp':
            now, then = _amp(now), _amp(then)
        name = flag(field)
        if field == 'epochs' and now is not None and then is not None:
            if now > then:
                continue  # an extension
            if now < trained_epochs:
                name += ' (the checkpoint has trained %d)' % trained_epochs
        if now != then:
            found.append((name, then, now))
    if recorded.get('batch_size') == config.batch_size and ('gpus' in recorded or
                                                           'cpus' in recorded):
        then = per_device_batch(recorded)
        now = per_device_batch(dict(gpus=config.gpus, cpus=config.cpus,
                                    batch_size=config.batch_size))
        if then != now:
            found.append(('devices (per-device batch)', then, now))
    return found


def refusal(resume, found):
    """The one line for a resume that would mix recipes."""
    return ('--resume %s: this run was trained with %s; resuming with %s would mix two recipes '
            'in one run: drop those flags (a resume continues the recorded recipe; only more '
            '--epochs may be asked for), or start a new run in another --save-dir'
            % (resume, ' '.join('%s %s' % (name, _shown(then)) for name, then, _ in found),
               ' '.join('%s %s' % (name, _shown(now)) for name, _, now in found)))


def extension(recorded, config):
    """(recorded epochs, new epochs) when this resume extends the run, else None."""
    then = recorded.get('epochs')
    if then is not None and config.epochs is not None and config.epochs > then:
        return then, config.epochs
    return None
