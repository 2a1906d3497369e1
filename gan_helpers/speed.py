"""The opt-in speed options of the command line and the benchmarks, applied to a Trainer after
it is built; they wrap the step without changing it. No chapter and no core module uses them.

    bf16            G's and D's forward passes under bfloat16 autocast, outputs back in
                    float32; weights and gradients stay float32, so no GradScaler.
    compile         torch.compile of G and D, in place. D stays eager where the loss
                    differentiates D's gradient (a penalty): compiled graphs have no double
                    backward.
    channels_last   the models' weights and activations in NHWC order.
    cudnn_benchmark cuDNN times its convolution algorithms once per shape (CUDA only).
"""

import torch

from .env import GanError

OPTIONS = ("bf16", "compile", "channels_last", "cudnn_benchmark")


def apply(trainer, options) -> None:
    """Switch the named options on for `trainer`'s models, in place."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise GanError(f"Unknown speed option {unknown[0]!r}; choose from {', '.join(OPTIONS)}.")
    device = trainer.device.type
    if "bf16" in options and not torch.amp.is_autocast_available(device):
        raise GanError(f"bfloat16 autocast is not available on {device}; train without bf16.")
    for model in (trainer.G, trainer.D):
        if "channels_last" in options:
            model.to(memory_format=torch.channels_last)
        if "bf16" in options:
            _autocast_forward(model, device)
    if "compile" in options:
        trainer.G.compile()
        if not (getattr(trainer.loss, "lam", 0) or getattr(trainer.loss, "r1", 0)):
            trainer.D.compile()
    if "cudnn_benchmark" in options and device == "cuda":
        torch.backends.cudnn.benchmark = True


def _autocast_forward(model, device_type) -> None:
    contexts = []

    # The hooks stay eager: under `compile` the forward is traced inside the autocast they
    # open, and Dynamo cannot trace a context entered in one function and left in another.
    @torch.compiler.disable
    def enter(module, args):
        contexts.append(torch.autocast(device_type, dtype=torch.bfloat16))
        contexts[-1].__enter__()

    @torch.compiler.disable
    def leave(module, args, out):
        contexts.pop().__exit__(None, None, None)
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()

    model.register_forward_pre_hook(enter)
    model.register_forward_hook(leave, always_call=True)
