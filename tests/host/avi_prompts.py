"""API-format prompts of the pack's graphs for host tests (node ids name their role)."""

# Every node of the pack: id -> display name, as the issue fixes them.
PACK_NODES = {
    "AVICaptureLatent": "Capture Latent at Step",
    "AVISVDDecompose": "SVD Decompose",
    "AVITrainPhi": "Train AVI Φ",
    "AVIIntegrate": "AVI Integrate (ρ)",
    "AVIInjectLatent": "Inject Latent",
    "AVISavePhi": "Save AVI Φ",
    "AVILoadPhi": "Load AVI Φ",
    "AVIScaleSingularValue": "Scale Singular Value",
    "AVISubspaceDistance": "Subspace Distance",
    "AVIImageGrid": "AVI Image Grid",
    "AVIInvertLatent": "Invert Latent (DDIM)",
    "AVISingularValueSweep": "Singular Value Sweep",
    "AVICaptureTrajectory": "Capture Trajectory",
    "AVITrajectoryDistance": "Subspace Distance Along Trajectory",
    "AVIMobilityMap": "Mobility Map",
}

SMALL_TRAINING = dict(k=0, hidden=64, epochs=2, samples_per_pair=60, batch_size=32, learning_rate=0.001,
                      lambda_1=3.0, lambda_2=10.0, lambda_3=10.0, lambda_4=10.0, rho=1.0, z_vectors="tail", seed=0)


def base_nodes(ckpt: str, original: str, target: str, size: int, batch: int = 1, width: int = None) -> dict:
    """Loader, the two prompts, a negative prompt and an empty latent."""
    return {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "original": {"class_type": "CLIPTextEncode", "inputs": {"text": original, "clip": ["ckpt", 1]}},
        "target": {"class_type": "CLIPTextEncode", "inputs": {"text": target, "clip": ["ckpt", 1]}},
        "negative": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, low quality", "clip": ["ckpt", 1]}},
        "empty": {"class_type": "EmptyLatentImage", "inputs": {"width": width or size, "height": size, "batch_size": batch}},
    }


def capture(prompt_node: str, fraction: float, *, seed=1, steps=20, cfg=7.5, sampler="ddim", scheduler="ddim_uniform", step=-1,
            start=("empty", 0)) -> dict:
    """An AVICaptureLatent node on the given prompt (start: its latent_image, an empty latent or an inverted one)."""
    return {"class_type": "AVICaptureLatent", "inputs": {
        "model": ["ckpt", 0], "positive": [prompt_node, 0], "negative": ["negative", 0], "latent_image": list(start),
        "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": sampler, "scheduler": scheduler,
        "timestep_fraction": fraction, "step": step}}


def invert(latent, *, steps=20, cfg=7.5, sampler="ddim", scheduler="ddim_uniform", refine=2, positive="original") -> dict:
    """AVIInvertLatent of a LATENT along the given schedule."""
    return {"class_type": "AVIInvertLatent", "inputs": {
        "model": ["ckpt", 0], "positive": [positive, 0], "negative": ["negative", 0], "latent": latent, "steps": steps,
        "cfg": cfg, "sampler_name": sampler, "scheduler": scheduler, "refine": refine}}


def ksampler(*, seed=1, steps=20, cfg=7.5, sampler="ddim", scheduler="ddim_uniform") -> dict:
    """A stock KSampler over the original prompt."""
    return {"class_type": "KSampler", "inputs": {
        "model": ["ckpt", 0], "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": sampler, "scheduler": scheduler,
        "positive": ["original", 0], "negative": ["negative", 0], "latent_image": ["empty", 0], "denoise": 1.0}}


def ksampler_advanced(latent, *, start, end, add_noise, leftover, seed=1, steps=20, cfg=7.5, sampler="ddim", scheduler="ddim_uniform") -> dict:
    """A stock KSamplerAdvanced over the original prompt."""
    return {"class_type": "KSamplerAdvanced", "inputs": {
        "model": ["ckpt", 0], "add_noise": add_noise, "noise_seed": seed, "steps": steps, "cfg": cfg,
        "sampler_name": sampler, "scheduler": scheduler, "positive": ["original", 0], "negative": ["negative", 0],
        "latent_image": latent, "start_at_step": start, "end_at_step": end, "return_with_leftover_noise": leftover}}


def inject(latent, *, cfg=7.5, sampler="from capture", scheduler="from capture", target_steps=None) -> dict:
    """AVIInjectLatent with the original prompt; with target_steps, the target prompt guides that many steps first."""
    extra = {} if target_steps is None else {"target": ["target", 0], "target_steps": target_steps}
    return {"class_type": "AVIInjectLatent", "inputs": {
        "model": ["ckpt", 0], "positive": ["original", 0], "negative": ["negative", 0], "latent": latent,
        "cfg": cfg, "sampler_name": sampler, "scheduler": scheduler, **extra}}


def capture_inject_prompt(ckpt: str, *, fraction=0.8, **run) -> dict:
    """A plain stock KSampler run ("plain") beside Capture at the fraction ("capture") and Inject of it ("inject")."""
    p = base_nodes(ckpt, "a photo of a castle", "unused", 128)
    p["plain"] = ksampler(**run)
    p["capture"] = capture("original", fraction, **run)
    p["inject"] = inject(["capture", 0])
    return p


def edit_prompt(ckpt: str, *, original="a photo of a male person", target="a photo of a young male person", size=128,
                batch=1, seed=1, steps=20, sampler="ddim", scheduler="ddim_uniform", tx=0.8, tz=0.5, rho=1.0, rho_list="",
                s_inf="S", training=None, phi_from=None, width=None, space=None, start=("empty", 0)) -> dict:
    """The whole edit graph: captures, SVDs, training (or a given Φ source), integrate, inject, decode, previews.

    Also finishes x unedited ("unedited_*") so tests can compare with the edit.
    """
    run = dict(seed=seed, steps=steps, sampler=sampler, scheduler=scheduler, start=start)
    p = base_nodes(ckpt, original, target, size, batch, width)
    p["capture_x"] = capture("original", tx, **run)
    p["capture_z"] = capture("target", tz, **run)
    chosen = {} if space is None else {"space": space}  # None: the node's default
    p["svd_x"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["capture_x", 0], **chosen}}
    p["svd_z"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["capture_z", 0], **chosen}}
    if phi_from is None:
        p["train"] = {"class_type": "AVITrainPhi", "inputs": {"x": ["svd_x", 0], "z": ["svd_z", 0], **(training or SMALL_TRAINING)}}
        phi_from = ["train", 0]
        p["loss_plot"] = {"class_type": "PreviewImage", "inputs": {"images": ["train", 1]}}
    p["integrate"] = {"class_type": "AVIIntegrate", "inputs": {
        "phi": phi_from, "x": ["svd_x", 0], "z": ["svd_z", 0], "rho": rho, "rho_list": rho_list, "s_inf": s_inf, "z_vectors": "as trained"}}
    p["inject"] = inject(["integrate", 0], cfg=7.5)
    p["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["inject", 0], "vae": ["ckpt", 2]}}
    p["edited"] = {"class_type": "PreviewImage", "inputs": {"images": ["decode", 0]}}
    p["unedited_inject"] = inject(["capture_x", 0])
    p["unedited_decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["unedited_inject", 0], "vae": ["ckpt", 2]}}
    p["unedited"] = {"class_type": "PreviewImage", "inputs": {"images": ["unedited_decode", 0]}}
    return p
