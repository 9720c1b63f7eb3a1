"""ECMC training, both stages, with the Hugging Face `Trainer` (paper §Training Process).

    python train.py --config configs/offline_demo.yaml                 # data -> cache -> stage 1 -> stage 2
    python train.py --config configs/offline_demo.yaml --stage 1       # one stage
    python train.py --config configs/offline_demo.yaml --resume        # continue after an interruption
    python train.py --config configs/offline_demo.yaml --set stage1.epochs=3 --set seed=1
    torchrun --nproc_per_node 2 train.py --config ...                  # several processes (gloo on CPU)
    accelerate launch train.py --config ...                            # GPUs; DeepSpeed via training.deepspeed

Top to bottom: config -> data (ECMC-Synth is built if the data set is missing) -> model -> feature
cache (the encoders are frozen: run once) -> stage 1 (BridgeNet, L_emo + L_cog, encoders frozen) ->
stage 2 (BridgeNet + projections, caption cross-entropy, encoders and LLM frozen). Each stage keeps
the checkpoint with the lowest validation loss (`<output_dir>/stageN/best`; `stage2.select_by:
readback` keeps the one whose validation captions read back the labels best); stage 2 starts from
stage 1's best; the final model + processor go to `<output_dir>/checkpoint`; the resolved config
(overrides included) to `<output_dir>/config.yaml`, which `--config` takes back to repeat the run.

The work is in `training_ecmc` (`training_ecmc.run.run_training`, `training_ecmc.cli.main`); this
entry point adds the read-back scorer of `stage2.select_by: readback` (`evaluation_ecmc.selection`).
"""

from training_ecmc import cli


def readback(processor, cfg):
    """The read-back scorer factory of `stage2.select_by: readback` (imported only when used)."""
    from evaluation_ecmc.selection import readback_scorer

    return readback_scorer(processor, cfg)


def main(argv=None):
    return cli.main(argv, readback=readback, description=__doc__)


if __name__ == "__main__":
    main()
