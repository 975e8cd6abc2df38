"""One training run as main.py's flags describe it: the photos of this rank, the device and precision, the
graph, the loop (train.py), and at the end the run's record result.json (run_report.write_result) in
--output_path, which every worker writes into its own folder and the launchers build their summary from."""
import math
import time

import alexnet_device
import data_loader
import distributed
import run_outputs
import run_report
import run_safety
import train
import training_graph
import watch

# The user's mistakes (and a diverged loss): one [Error] line each.
MISTAKES = (data_loader.DataError, train.TrainingError, distributed.ClusterError, run_safety.RunSafetyError)


def photo_inputs(args):
    """data_loader.Inputs of this rank from the photos of --data_path."""
    entries, crops = data_loader.list_photos(args.data_path, skip_bad=args.skip_bad_photos)
    train_set, val_set = data_loader.split(entries, args.val_photos, args.seed)
    if len(val_set) < args.mul_rank_size:  # every rank evaluates its share of the held-out images
        raise data_loader.DataError(f"--val_photos: {len(val_set)} held-out images cannot be shared by "
                                    f"{args.mul_rank_size} ranks; hold out more")
    cache = data_loader.fits_cache(len(entries), args.cache_mb)
    print(f"split: {len(train_set)} training / {len(val_set)} held-out images "
          f"({len({e[2] for e in val_set})} source photos held out, seed {args.seed}); "
          f"decoded-image cache {'on' if cache else 'off'}")
    return data_loader.inputs(train_set, val_set, args.batch_size, crops, cache, args.seed,
                              args.mul_rank_size, args.mul_device_id)


def run(args, inputs=None, started=None):
    """Trains as the flags say, writes result.json into --output_path and returns the history
    (run_outputs.new_history). inputs: data_loader.Inputs instead of the photos of --data_path; started: the
    time.time() the process started at (e2e_seconds; default now). Raises MISTAKES for the user's mistakes (and
    a diverged loss), run_safety.Stopped after SIGTERM / SIGINT. The flags and the data are checked before
    anything is written."""
    started = started or time.time()
    # The log's first line of the run's own (TensorFlow's start-up lines may precede it): device, precision, why.
    chosen = alexnet_device.precision(args.precision_mode)
    print(chosen.describe(), flush=True)
    inputs = inputs or photo_inputs(args)
    if args.batch_size > inputs.train_images:
        raise data_loader.DataError(f"--batch_size: {args.batch_size} is larger than the {inputs.train_images} "
                                    "training images of this rank; pass a smaller --batch_size or --val_photos")
    run_safety.writable_folder(args.output_path, "--output_path")
    with run_safety.FolderLock(args.output_path) as lock:
        for folder in run_outputs.checkpoint_folders(args.output_path):
            lock.remove_unfinished_saves(folder)
        return _train(args, inputs, chosen, started)


def _train(args, inputs, chosen, started):
    config = alexnet_device.session_config(chosen, alexnet_device.Dumps(
        args.output_path, args.over_dump, args.data_dump_flag, args.data_dump_step, args.profiling))
    ranks = distributed.ranks(args.mul_rank_size, args.mul_device_id, chosen.device == "Ascend",
                              timeout_seconds=args.collective_timeout)
    target = ""
    if ranks:
        config, target = ranks.connect(config)
        print(f"worker {ranks.index} of {ranks.size}, gradients all-reduced")
    print(f"this rank: {inputs.train_images} training images, {inputs.held_out_images} held out")
    net = training_graph.build(inputs, args.learning_rate * args.mul_rank_size, args.init, args.pixels,
                               args.seed + args.mul_device_id, ranks)
    outputs = run_outputs.RunOutputs(args.output_path, net.graph, net.conv1, chief=ranks is None or ranks.is_chief,
                                     settings={"pixels": args.pixels})
    plan = train.Plan(epochs=args.epoch, steps=args.step or inputs.train_images // args.batch_size,
                      batch_size=args.batch_size, held_out_batches=math.ceil(inputs.held_out_images / args.batch_size),
                      log_every=args.log_every)
    try:
        with watch.Watch(args.output_path, args.batch_size * args.mul_rank_size, events=outputs.chief) as watched:
            history = train.run(net, plan, outputs, config, watched, ranks, target)
    except distributed.PEER_ERRORS as err:
        if ranks is None:
            raise
        raise train.TrainingError(f"main.py: {ranks.describe_failure(err)}") from None
    _record(args, chosen, watched, history, started)
    return history


def _record(args, chosen, watched, history, started):
    """result.json: this process's steady-state speed (StepClock), the last held-out accuracy as a fraction, the
    loss the loss file ends with; the epochs and the global step reached after the contract's keys."""
    clock = watched.clock
    run_report.write_result(
        args.output_path, model=alexnet_device.MODEL, launcher=args.launcher, device=chosen.device, precision=chosen.dtype,
        batch_size=clock.global_batch, rank_size=args.mul_rank_size, steps=len(clock.seconds),
        warmup_steps=clock.warmup_excluded, ms_per_step=clock.ms_per_step, images_per_sec=clock.images_per_sec,
        accuracy_name="held_out_accuracy", accuracy=history["test_acc"][-1] / 100.0, final_loss=watched.last_loss,
        e2e_seconds=round(time.time() - started, 1), epochs=len(history["loss"]), global_step=history["steps"][-1])
