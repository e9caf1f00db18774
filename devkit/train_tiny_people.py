"""Train the shipped tiny people model on emoji of people, on a CPU, from nothing.

Usage: python devkit/train_tiny_people.py [--out demo_models/avi_demo_tiny_people_sd2.safetensors] [--seed 0]
       [--ae-steps 3500] [--steps 4000] [--threads 2]
       python devkit/train_tiny_people.py --resume CHECKPOINT --seed 1 [--steps N] [--lr 5e-4]   (go on training)
       python devkit/train_tiny_people.py --resume CHECKPOINT --decoder-steps N --steps 0   (a sharper decoder, same latents)
       make people-model runs the shipped recipe: the first line with its defaults, one command.

Data: people emoji in three drawing styles (Noto, Twemoji, OpenMoji; devkit/people.py and people_sources.py), drawn on a
128 px canvas at a random scale, offset and background colour, captioned from what Unicode says of each emoji
(gender, age, hair, skin tone, role), attribute words dropped at random. Two stages, both seeded:
1. A TAESD autoencoder (ComfyUI's own TAESD class, 4x16x16 latents), encoder and decoder trained together. Its 128 px
   layers are fixed filters (blur-downsampling to 64 px on the way in, upsampling and blur on the way out); the 64,
   32 and 16 px layers are learned, so images are drawn at 64 px detail. The decoder draws image + OFFSET above its
   ReLUs' floor from the first step, so it never collapses to black and the encoder learns to carry colour (the
   digits model's encoder, trained without a working decoder, did not: its VAE turns white ink orange).
2. The SD2-family UNet (eps prediction, SD2's discrete schedule) and the tiny SD2 text encoder (real SD2 tokenizer),
   trained together on a pool of latents with 10 % empty captions (for cfg), with an exponential moving average.
The checkpoint loads through CheckpointLoaderSimple in any ComfyUI with the pack installed (config class
AVIDemoTinyPeopleSD2 of nodes/demo_models.py).
"""
import argparse
import json
import os
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from devkit import people, people_sources  # noqa: E402
from devkit.diffusion_training import (LATENT_SCALE, OFFSET, adam_step, blur_kernel, build_model_and_clip, cosine,  # noqa: E402
                                       log, save, taesd_with_fixed_ends, train_unet_and_text)

DEFAULT_OUT = os.path.join(REPO_ROOT, "demo_models", "avi_demo_tiny_people_sd2.safetensors")
LATENT_NOISE = 0.05   # the decoder learns to read latents this far off (the UNet's samples are never exact)


# ---- stage 1: the autoencoder ------------------------------------------------------------

def down64(images: torch.Tensor) -> torch.Tensor:
    """128 -> 64 px: one blur-and-subsample step, what the encoder's fixed 128 px layers compute."""
    return F.conv2d(images, blur_kernel(3), stride=2, padding=1, groups=3)


def up128(content: torch.Tensor) -> torch.Tensor:
    """64 -> 128 px: nearest upsampling and blur, what the decoder's fixed 128 px layers compute."""
    return F.conv2d(F.interpolate(content, scale_factor=2.0, mode="nearest"), blur_kernel(3), padding=1, groups=3)


def build_taesd(seed: int):
    """ComfyUI's TAESD, fixed at 128 px and learned below.

    Encoder: 0 conv(3,64) 1 Block | 2 down | 3-5 Blocks (64 px) | 6 down 7-9 Blocks (32 px) | 10 down 11-13 Blocks 14 conv (16 px).
    Decoder: 0 clamp 1 conv 2 relu 3-5 Blocks (16 px) | 6 up 7 conv 8-10 Blocks (32 px) | 11 up 12 conv 13-15 Blocks (64 px) |
    16 up 17 conv 18 Block 19 conv (128 px). Fixed: encoder 0-5 (copy, blur-down, identities), decoder 13-19 (identities,
    blur-up, minus OFFSET). Learned: encoder 6-14 (reading channels 0..2), decoder 1-12 (writing channels 0..2 at 64 px).
    """
    ae = taesd_with_fixed_ends(seed)
    enc, dec = ae.taesd_encoder, ae.taesd_decoder
    with torch.no_grad():
        enc[6].weight[:, 3:] = 0   # the 64 px layers carry the image in channels 0..2 only
        dec[19].bias.fill_(-OFFSET)
        # the learned decoder starts as the identity on its residuals, carrying OFFSET into the image channels
        for i in (3, 4, 5, 8, 9, 10):
            dec[i].conv[4].weight.zero_()
            dec[i].conv[4].bias.zero_()
        dec[10].conv[4].bias[:3] = OFFSET
        dec[12].weight.mul_(0.1)
        dec[12].weight[3:] = 0
        for c in range(3):
            dec[12].weight[c, c] += torch.outer(torch.tensor([1.0, 2.0, 1.0]), torch.tensor([1.0, 2.0, 1.0])) / 16
        ae.vae_scale.fill_(LATENT_SCALE)
        ae.vae_shift.fill_(0.0)
    return ae


def layers(sequence, start: int, stop: int) -> list:
    """Layers start..stop-1 of a TAESD encoder or decoder, by index: newer hosts' Encoder and Decoder classes cannot be
    sliced (nn.Sequential slicing calls their constructor with the layers)."""
    return [sequence[i] for i in range(start, stop)]


def run(sequence, start: int, stop: int, x: torch.Tensor) -> torch.Tensor:
    """x through layers start..stop-1 of a TAESD encoder or decoder."""
    for layer in layers(sequence, start, stop):
        x = layer(x)
    return x


def decoder_parameters(ae) -> list:
    return [p for layer in layers(ae.taesd_decoder, 1, 13) for p in layer.parameters()]


def learned_parameters(ae) -> list:
    enc = ae.taesd_encoder
    return [p for layer in layers(enc, 6, len(enc)) for p in layer.parameters()] + decoder_parameters(ae)


def encode(ae, content: torch.Tensor) -> torch.Tensor:
    """Model-space latents [B, 4, 16, 16] from 64 px content [B, 3, 64, 64]: encoder layers 6-14 on channels 0..2."""
    enc = ae.taesd_encoder
    return run(enc, 7, len(enc), F.conv2d(content, enc[6].weight[:, :3], stride=2, padding=1))


def decode(ae, latent: torch.Tensor) -> torch.Tensor:
    """Images [B, 3, 128, 128] from model-space latents: decoder layers 0-12 on channels 0..2, then the fixed 128 px layers."""
    dec = ae.taesd_decoder
    h = F.interpolate(run(dec, 0, 11, latent), scale_factor=2.0, mode="nearest")
    return up128(F.relu(F.conv2d(h, dec[12].weight[:3], padding=1))) - OFFSET


def round_trip_losses(ae, images: torch.Tensor, gen: torch.Generator):
    """(pixel loss, colour loss, latents) of one batch through encoder and decoder, the decoder reading latents
    LATENT_NOISE off; colour on 8x8-pooled images, so a cast over a region costs as much as a sharp edge."""
    z = encode(ae, down64(images))
    recon = decode(ae, z + LATENT_NOISE * torch.randn(z.shape, generator=gen))
    loss_rec = F.mse_loss(recon, images) + 0.5 * F.l1_loss(recon, images)
    return loss_rec, F.mse_loss(F.avg_pool2d(recon, 8), F.avg_pool2d(images, 8)), z


def train_autoencoder(data: people.PeopleData, steps: int, seed: int, batch: int = 16):
    """Stage 1: encoder and decoder on reconstruction at 128 px, colour weighed as well as detail, with a unit-variance
    zero-mean latent robust to LATENT_NOISE."""
    ae = build_taesd(seed)
    params = learned_parameters(ae)
    opt = torch.optim.Adam(params, lr=1e-3)
    gen = torch.Generator().manual_seed(seed + 1)
    t0 = time.time()
    for step in range(1, steps + 1):
        images, _, _ = data.batch(batch, gen)
        loss_rec, loss_colour, z = round_trip_losses(ae, images, gen)
        mean, var = z.mean((0, 2, 3)), z.var((0, 2, 3))
        loss = loss_rec + loss_colour + 0.01 * (mean.square().mean() + (var - 1).square().mean())
        adam_step(opt, loss, 1e-3 * min(1.0, step / 50) * cosine(step, steps))
        with torch.no_grad():
            ae.taesd_encoder[6].weight[:, 3:] = 0
            ae.taesd_decoder[12].weight[3:] = 0
        if step % 100 == 0 or step == 1:
            log(f"autoencoder step {step}/{steps}: reconstruction {loss_rec.item():.4f}, colour {loss_colour.item():.5f}, "
                f"latent mean {mean.abs().mean():.3f}, var {var.mean():.3f} ({time.time() - t0:.0f} s)")
    return ae


def refit_decoder(ae, data: people.PeopleData, steps: int, seed: int, batch: int = 16, lr: float = 5e-4):
    """The decoder trained further on the frozen encoder: sharper, truer images from the very latents the UNet was
    trained on, so the UNet stays as it is."""
    for p in ae.parameters():
        p.requires_grad_(False)
    params = decoder_parameters(ae)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed + 5)
    t0 = time.time()
    for step in range(1, steps + 1):
        images, _, _ = data.batch(batch, gen)
        loss_rec, loss_colour, _ = round_trip_losses(ae, images, gen)
        adam_step(opt, loss_rec + loss_colour, lr * min(1.0, step / 50) * cosine(step, steps))
        with torch.no_grad():
            ae.taesd_decoder[12].weight[3:] = 0
        if step % 100 == 0 or step == 1:
            log(f"decoder step {step}/{steps}: reconstruction {loss_rec.item():.4f}, colour {loss_colour.item():.5f} "
                f"({time.time() - t0:.0f} s)")
    return ae


@torch.no_grad()
def autoencoder_check(ae, data: people.PeopleData, seed: int) -> dict:
    """Reconstruction of 64 held-out drawings through the fast path: pixel MAE and per-channel mean colour error."""
    images, _, _ = data.batch(64, torch.Generator().manual_seed(seed + 7), held=True)
    recon = decode(ae, encode(ae, down64(images))).clamp(0, 1)
    colour = (recon.mean((2, 3)) - images.mean((2, 3))).abs().mean(0)
    return {"mae": float((recon - images).abs().mean()), "colour_error_rgb": [round(float(c), 4) for c in colour]}


# ---- stage 2: UNet and text encoder --------------------------------------------------------

def latent_pool(ae, data: people.PeopleData, count: int, seed: int, by_group: bool = False):
    """(latents [count, 4, 16, 16], drawing indices [count]) of training drawings in random layouts (plain persons
    shared by attribute group with by_group)."""
    gen = torch.Generator().manual_seed(seed + 4)
    lat, which = [], []
    with torch.no_grad():
        for start in range(0, count, 250):
            images, idx, _ = data.batch(min(250, count - start), gen, by_group=by_group)
            lat.append(encode(ae, down64(images)))
            which.append(idx)
    return torch.cat(lat), torch.cat(which)


def build_people_model(seed: int):
    """(config, model, clip) of the people model's shape in float32, untrained."""
    from devkit import tiny_models
    return build_model_and_clip(tiny_models.pack_demo_models().AVIDemoTinyPeopleSD2, tiny_models.PEOPLE_UNET_CONFIG, seed)


def load_trained(path: str, seed: int):
    """(autoencoder, config, model, clip, metadata) of a checkpoint this script wrote, in float32, read through ComfyUI's
    own loader, so that training can go on from it."""
    import comfy.sd
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        metadata = f.metadata() or {}
    if metadata.get("avi.script") != "devkit/train_tiny_people.py":
        raise SystemExit(f"--resume {path}: not a checkpoint of devkit/train_tiny_people.py (its avi.script is "
                         f"{metadata.get('avi.script')!r})")
    patcher, loaded_clip, vae = comfy.sd.load_checkpoint_guess_config(path)[:3]
    config, model, clip = build_people_model(seed)
    model.diffusion_model.load_state_dict({k: v.float() for k, v in patcher.model.diffusion_model.state_dict().items()})
    clip.cond_stage_model.load_state_dict({k: v.float() for k, v in loaded_clip.get_sd().items()})
    ae = build_taesd(seed)
    ae.load_state_dict({k: v.float() for k, v in vae.first_stage_model.state_dict().items()})
    return ae, config, model, clip, metadata


def train_diffusion(ae, data: people.PeopleData, steps: int, batch: int, pool_size: int, seed: int, lr: float,
                    start=None, by_group: bool = False):
    """Stage 2: UNet and text encoder on the people latents, from scratch or on from `start` = (config, model, clip);
    returns (config, model, clip) with the EMA weights."""
    config, model, clip = start or build_people_model(seed)
    lat, which = latent_pool(ae, data, pool_size, seed, by_group)
    drawings = data.drawings
    train_unet_and_text(model, clip, lat, lambda i, gen: people.caption(drawings[int(which[i])], gen),
                        people.all_captions(drawings), people.EMPTY_CAPTION_RATE, steps, batch, seed, lr_max=lr)
    return config, model, clip


def without_out(argv: list) -> list:
    """The command's arguments less --out: where a run writes is not part of its recipe."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--out":
            skip = True
        elif not a.startswith("--out="):
            out.append(a)
    return out


def chained_settings(previous_json, settings: dict):
    """One run's settings, or the list of every run's settings when it went on from an earlier checkpoint."""
    if not previous_json:
        return settings
    previous = json.loads(previous_json)
    return (previous if isinstance(previous, list) else [previous]) + [settings]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ae-steps", type=int, default=3500)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--pool", type=int, default=30000)
    parser.add_argument("--lr", type=float, default=1e-3, help="the diffusion stage's peak learning rate")
    parser.add_argument("--resume", default="", help="a checkpoint this script wrote: keep its autoencoder and train "
                        "its UNet and text encoder --steps further (on a pool drawn with --seed)")
    parser.add_argument("--decoder-steps", type=int, default=0, help="then train the decoder this many steps further on "
                        "the frozen encoder (the latents, so the UNet, stay as they are)")
    parser.add_argument("--pool-by", choices=("halves", "groups"), default="halves", help="how the latent pool draws "
                        "plain persons: their half of the pool by drawing (halves) or shared by (age, gender, hair) group")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=people_sources.DEFAULT_CACHE, help="cache folder of the downloaded emoji")
    args = parser.parse_args(argv)
    if not args.steps and not args.resume:
        parser.error("--steps 0 trains no UNet: give --resume CHECKPOINT to keep its UNet and text encoder")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    from devkit import comfy_host
    start = time.time()
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python devkit/train_tiny_people.py"] + without_out(given))
    data = people_sources.load(args.data)
    log(f"{len(data.drawings)} drawings, {int(data.indices(True).numel())} held out")
    with tempfile.TemporaryDirectory(prefix="avi-train-") as scratch:
        comfy_host.prepare(scratch)
        from devkit import tiny_models
        import comfy.ldm.modules.attention as attention
        tiny_models.register_demo_configs()
        # PyTorch's fused attention trains faster on a CPU than the host's default there (sub-quadratic chunks); same maths
        attention.optimized_attention = attention.attention_pytorch
        previous, start_from = {}, None
        if args.resume:
            ae, *start_from, previous = load_trained(args.resume, args.seed)
            log(f"going on from {args.resume} ({previous.get('avi.command')})")
        else:
            ae = train_autoencoder(data, args.ae_steps, args.seed)
        if args.decoder_steps:
            log(f"autoencoder on held-out drawings before the decoder's refit: {autoencoder_check(ae, data, args.seed)}")
            ae = refit_decoder(ae, data, args.decoder_steps, args.seed)
        check = autoencoder_check(ae, data, args.seed)
        log(f"autoencoder on held-out drawings: {check}")
        for p in ae.parameters():
            p.requires_grad_(False)
        config, model, clip = train_diffusion(ae, data, args.steps, args.batch, args.pool, args.seed, args.lr,
                                              start_from, args.pool_by == "groups") if args.steps else start_from
        minutes = (time.time() - start) / 60 + float(previous.get("avi.train_minutes", 0))
        unused = ("out", "data", "ae_steps") if args.resume else ("out", "data", "resume")
        if not args.steps:
            unused += ("pool", "lr", "batch", "pool_by")
        settings = {k: v for k, v in vars(args).items() if k not in unused}
        if previous:   # the recipe is the chain of commands, each with its settings
            command = f"{previous['avi.command']} && {command}"
        metadata = {
            "modelspec.title": "AVI tiny people (SD2 family)",
            "avi.script": "devkit/train_tiny_people.py",
            "avi.command": command,
            "avi.seed": f"{previous['avi.seed']} then {args.seed}" if previous else args.seed,
            "avi.data": json.dumps(people_sources.LICENCES),
            "avi.data_split": f"{len(data.drawings)} drawings, {int(data.indices(True).numel())} held out "
                              f"(devkit.people.held_out: {people.HELD_OUT_SHARE:.0%} by a hash of style and code)",
            "avi.autoencoder_check": json.dumps(check),
            "avi.settings": json.dumps(chained_settings(previous.get("avi.settings"), settings)),
            "avi.train_minutes": f"{minutes:.1f}",
            "avi.torch": torch.__version__,
        }
        save(args.out, config, model, clip, ae, metadata)
    log(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB) after {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
