"""What training a tiny text-to-image model of ComfyUI's SD2 family takes, whatever its data (digits, people).

Fixed-filter helpers for TAESD layers, Adam steps and schedules, the tiny SD2 text encoder trained through
ComfyUI's own tokenizer, the UNet-and-text training loop on a pool of latents, and the half-precision
checkpoint writer. Callers put ComfyUI on sys.path first (devkit.comfy_host.prepare).
"""
import math
import os
import time

import torch
import torch.nn.functional as F

LATENT_SCALE = 0.18215   # SD2's latent format: model-space latent = raw * 0.18215; TAESD's vae_scale makes it the encoder output
BLUR = torch.tensor([1.0, 2.0, 1.0]) / 4.0
OFFSET = 0.5  # a decoder's learned layers draw image + OFFSET, above their ReLUs' floor (see train_tiny_digits.fit_decoder)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def blur_kernel(channels: int) -> torch.Tensor:
    """[channels, 1, 3, 3] separable [1, 2, 1]/4 blur for a depthwise conv."""
    return (BLUR[:, None] * BLUR[None, :]).expand(channels, 1, 3, 3).contiguous()


def zero_block(block) -> None:
    """A TAESD Block whose convolutions are zero: relu(x), the identity on non-negative images."""
    for m in block.conv:
        if isinstance(m, torch.nn.Conv2d):
            m.weight.zero_()
            if m.bias is not None:
                m.bias.zero_()


def set_blur(conv, stride_down: bool) -> None:
    """conv carries channels 0..2 through the [1, 2, 1] blur and writes zeros elsewhere."""
    conv.weight.zero_()
    for c in range(3):
        conv.weight[c, c] = BLUR[:, None] * BLUR[None, :]
    if conv.bias is not None:
        conv.bias.zero_()


def init_learned(module: torch.nn.Module, gen: torch.Generator) -> None:
    """He-normal convolutions, zero biases."""
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                m.bias.zero_()


def taesd_with_fixed_ends(seed: int):
    """ComfyUI's TAESD, learned layers He-initialised, the 128 px ends fixed: encoder 0 copies RGB, 1-5 identity blocks
    around a blur-down (2); decoder 13-15 and 18 identity blocks, 17 blur-up, 19 copies channels 0..2 (bias 0)."""
    import comfy.taesd.taesd as taesd_module
    ae = taesd_module.TAESD()
    enc, dec = ae.taesd_encoder, ae.taesd_decoder
    with torch.no_grad():
        init_learned(ae, torch.Generator().manual_seed(seed))
        for conv in (enc[0], dec[19]):
            conv.weight.zero_()
            conv.bias.zero_()
            for c in range(3):
                conv.weight[c, c, 1, 1] = 1.0
        for i in (1, 3, 4, 5):
            zero_block(enc[i])
        for i in (13, 14, 15, 18):
            zero_block(dec[i])
        set_blur(enc[2], True)
        set_blur(dec[17], False)
    return ae


def cosine(step: int, steps: int) -> float:
    """Cosine decay from 1 to 0 over the run."""
    return 0.5 * (1 + math.cos(math.pi * step / steps))


def adam_step(opt, loss: torch.Tensor, lr: float) -> None:
    """One optimiser step on loss at learning rate lr."""
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def build_model_and_clip(config_class, unet_config: dict, seed: int):
    """(config, BaseModel, CLIP) of a tiny SD2-family config class in float32, seeded, untrained."""
    import comfy.model_base
    import comfy.sd
    from devkit import tiny_models
    config = config_class(dict(unet_config))
    config.set_inference_dtype(torch.float32, None)
    model = comfy.model_base.BaseModel(config, model_type=comfy.model_base.ModelType.EPS, device=torch.device("cpu"))
    tiny_models.init_weights(model.diffusion_model, seed)
    with torch.no_grad():
        model.diffusion_model.out[2].weight.zero_()   # start from eps_hat = 0: stable first steps
        model.diffusion_model.out[2].bias.zero_()
    cpu = torch.device("cpu")
    clip = comfy.sd.CLIP(config.clip_target(), model_options={"dtype": torch.float32, "load_device": cpu,
                                                             "offload_device": cpu, "initial_device": cpu})
    tiny_models.init_weights(clip.cond_stage_model, seed + 1)
    return config, model, clip


class Captions:
    """Tokenised captions, cached: ComfyUI's SD2 tokenizer, as CLIPTextEncode calls it."""

    def __init__(self, clip):
        self.clip, self.cache = clip, {}

    def tokens(self, text: str) -> list:
        if text not in self.cache:
            self.cache[text] = [t for t, _ in self.clip.tokenize(text)["h"][0]]
        return self.cache[text]


def differentiable_clip_layers() -> None:
    """ComfyUI's CLIPLayer adds its residuals in place, which autograd cannot train through; the same sums out of place."""
    import comfy.clip_model

    def forward(self, x, mask=None, optimized_attention=None):
        x = x + self.self_attn(self.layer_norm1(x), mask, optimized_attention)
        return x + self.mlp(self.layer_norm2(x))
    comfy.clip_model.CLIPLayer.forward = forward


def encode_text(text_model, captions: Captions, texts: list) -> torch.Tensor:
    """Cross-attention context [B, 77, 64] exactly as ComfyUI computes it (SDClipModel.forward), with gradients."""
    z, _ = text_model([captions.tokens(t) for t in texts])
    return z


def vocabulary_rows(captions: Captions, texts: list) -> torch.Tensor:
    """Token ids that the captions (and the padding/special tokens) use."""
    ids = set()
    for t in texts:
        ids.update(captions.tokens(t))
    return torch.tensor(sorted(ids))


def train_unet_and_text(model, clip, lat: torch.Tensor, caption_of, texts: list, empty_rate: float, steps: int, batch: int,
                        seed: int, lr_max: float = 1e-3, warmup: int = 200):
    """Eps-prediction training of UNet and text encoder on SD2's schedule from latents [N, C, H, W] (model space);
    caption_of(i, gen) is latent i's caption, `texts` every caption there can be. Leaves the EMA weights in place."""
    differentiable_clip_layers()
    text_model = clip.cond_stage_model.clip_h
    captions = Captions(clip)
    rows = vocabulary_rows(captions, texts)
    table = text_model.transformer.get_input_embeddings().weight
    with torch.no_grad():
        keep = torch.zeros(table.shape[0], dtype=torch.bool)
        keep[rows] = True
        table[~keep] = 0   # only the caption vocabulary is trained (and stored); other words read as nothing
    log(f"text vocabulary: {rows.numel()} token ids over {len(texts)} captions")
    log(f"latent pool: {tuple(lat.shape)}, mean {lat.mean():.3f}, std {lat.std():.3f}")
    unet = model.diffusion_model
    params = list(unet.parameters()) + list(text_model.parameters())
    for p in params:
        p.requires_grad_(True)
    text_model.train()
    unet.train()
    ema = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    sigmas = model.model_sampling.sigmas.float()
    gen = torch.Generator().manual_seed(seed + 2)
    t0 = time.time()
    for step in range(1, steps + 1):
        idx = torch.randint(lat.shape[0], (batch,), generator=gen)
        x0 = lat[idx]
        texts_b = []
        drop = torch.rand(batch, generator=gen) < empty_rate
        for j, i in enumerate(idx.tolist()):
            texts_b.append("" if drop[j] else caption_of(i, gen))
        t = torch.randint(0, sigmas.numel(), (batch,), generator=gen)
        sigma = sigmas[t].view(-1, 1, 1, 1)
        noise = torch.randn(x0.shape, generator=gen)
        x = x0 + sigma * noise                                  # ComfyUI's sampler state for eps models
        context = encode_text(text_model, captions, texts_b)
        xc = x / (sigma ** 2 + 1).sqrt()                        # EPS.calculate_input
        eps = unet(xc, model.model_sampling.timestep(sigma.flatten()).float(), context=context)
        loss = F.mse_loss(eps, noise)
        warm = min(1.0, step / warmup)
        lr = lr_max * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema, params):
                e.lerp_(p.detach(), 1 - decay)
        if step % 100 == 0 or step == 1:
            log(f"diffusion step {step}/{steps}: loss {loss.item():.4f}, lr {lr:.2e} ({time.time() - t0:.0f} s)")
    with torch.no_grad():
        for e, p in zip(ema, params):
            p.copy_(e)
    unet.eval()
    text_model.eval()


def save(path: str, config, model, clip, ae, metadata: dict) -> None:
    """Half-precision checkpoint through ComfyUI's save_checkpoint, written atomically."""
    import comfy.model_patcher
    import comfy.sd
    cpu = torch.device("cpu")
    half = lambda sd: {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}  # noqa: E731
    model.diffusion_model.half()
    config.set_inference_dtype(torch.float16, torch.float32)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)
    clip_half = comfy.sd.CLIP(config.clip_target(), model_options={"dtype": torch.float16, "load_device": cpu,
                                                                  "offload_device": cpu, "initial_device": cpu})
    clip_half.load_sd(half(clip.get_sd()), full_model=True)
    vae = comfy.sd.VAE(sd=half(ae.state_dict()), device=cpu, dtype=torch.float16)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.partial"
    try:
        comfy.sd.save_checkpoint(tmp, patcher, clip=clip_half, vae=vae, metadata={k: str(v) for k, v in metadata.items()})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
