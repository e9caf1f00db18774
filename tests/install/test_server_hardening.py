"""The real ComfyUI server with the pack, driven over HTTP with bad and edge-case inputs.

Each case is queued with POST /prompt and must be refused with a message that names what was
given and what fits: at queue time (400 and node_errors) or when it runs (the error in
/history). After every case a valid prompt still runs, no file has appeared outside
models/avi (nor through a link out of it), and no temporary `.partial` file is left. Tampered
Φ files are built by the test; the tiny random SD2 model and 64 px images keep it cheap.
Run with -s to print every case with the message it got.
"""
import json
import math
import os
import pickle
import re
import struct
import subprocess
import sys
import time
import urllib.request

import pytest
import torch
from safetensors.torch import load_file, save, save_file

from devkit.server import LOG_NAME, PREVIOUS_LOG_NAME, ComfyServer, ServerError
from tests.host.avi_prompts import SMALL_TRAINING, base_nodes, capture, inject, invert
from tests.install.support import PACK_NAME, REPO_ROOT

CKPT = "tiny_sd2_eps.safetensors"
SIZE, STEPS = 64, 10  # 8×8 latents: N = 8
TRAINING = dict(SMALL_TRAINING, hidden=16, epochs=1, samples_per_pair=0, batch_size=1)
GOOD = "good.safetensors"  # a Φ trained by the fixture, at x 0.8·T and z 0.5·T
NAN, INF = float("nan"), float("inf")
MESSAGES = {}  # case -> message, printed at the end (pytest -s)
# LATENT files for stock LoadLatent, written into input/ at start: latents of channel counts the model does not take.
LATENT_FILES = {f"c{c}.latent": save({"latent_tensor": torch.randn(1, c, 8, 8, generator=torch.Generator().manual_seed(c)),
                                      "latent_format_version_0": torch.zeros(0)}) for c in (3, 16)}


class SingleThreadServer(ComfyServer):
    """Tiny tensors run faster on one thread than on two contended ones (devkit HOST notes)."""

    def environment(self) -> dict:
        return dict(super().environment(), OMP_NUM_THREADS="1")


def pair(x=None, z=None, tx=0.8, tz=0.5) -> dict:
    """Loader, prompts, the two captures and their SVDs."""
    p = base_nodes(CKPT, "a photo of a male person", "a photo of a young male person", SIZE)
    p["capture_x"] = capture("original", tx, **(dict(steps=STEPS) | (x or {})))
    p["capture_z"] = capture("target", tz, **(dict(steps=STEPS) | (z or {})))
    p["svd_x"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["capture_x", 0]}}
    p["svd_z"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["capture_z", 0]}}
    return p


def finish(p: dict, latent, name="edited") -> dict:
    """Inject the latent with the original prompt, decode it and preview it."""
    p[f"{name}_inject"] = inject(latent)
    p[f"{name}_decode"] = {"class_type": "VAEDecode", "inputs": {"samples": [f"{name}_inject", 0], "vae": ["ckpt", 2]}}
    p[name] = {"class_type": "PreviewImage", "inputs": {"images": [f"{name}_decode", 0]}}
    return p


def reuse(phi_name=GOOD, rho=1.0, **pair_args) -> dict:
    """Load a Φ, integrate it into a fresh pair, finish and preview the edit: the valid prompt."""
    p = pair(**pair_args)
    p["load"] = {"class_type": "AVILoadPhi", "inputs": {"phi_name": phi_name}}
    p["integrate"] = {"class_type": "AVIIntegrate", "inputs": {"phi": ["load", 0], "x": ["svd_x", 0], "z": ["svd_z", 0],
                                                                "rho": rho, "rho_list": "", "s_inf": "S", "z_vectors": "as trained"}}
    return finish(p, ["integrate", 0])


def train(filename=None, if_exists="overwrite", **pair_args) -> dict:
    """Train a tiny Φ on a pair; save it when filename is given, else preview the loss plot."""
    p = pair(**pair_args)
    p["train"] = {"class_type": "AVITrainPhi", "inputs": {"x": ["svd_x", 0], "z": ["svd_z", 0], **TRAINING}}
    if filename is None:
        p["plot"] = {"class_type": "PreviewImage", "inputs": {"images": ["train", 1]}}
    else:
        p["save"] = {"class_type": "AVISavePhi", "inputs": {"phi": ["train", 0], "filename": filename, "if_exists": if_exists}}
    return p


def explore(node: dict) -> dict:
    """A pair with an exploration node (class_type and inputs beyond the SVDs) and an output after it."""
    p = pair()
    if node["class_type"] == "AVIScaleSingularValue":
        p["explore"] = {"class_type": node["class_type"], "inputs": {"svd": ["svd_x", 0], **node["inputs"]}}
        return finish(p, ["explore", 0])
    p["explore"] = {"class_type": node["class_type"], "inputs": {"a": ["svd_x", 0], "b": ["svd_z", 0], **node["inputs"]}}
    p["plot"] = {"class_type": "PreviewImage", "inputs": {"images": ["explore", 1]}}
    return p


def patched(p: dict, node: str, **inputs) -> dict:
    """p with some inputs of one node replaced."""
    p[node]["inputs"].update(inputs)
    return p


def multiplied(factor) -> dict:
    """x's capture through stock LatentMultiply (which keeps the capture record) into SVD Decompose and Inject."""
    p = reuse()
    p["multiply"] = {"class_type": "LatentMultiply", "inputs": {"samples": ["capture_x", 0], "multiplier": factor}}
    p["svd_x"]["inputs"]["latent"] = ["multiply", 0]
    return p


def nan_into_inject() -> dict:
    """x's capture times NaN, straight into Inject Latent."""
    p = pair()
    p["multiply"] = {"class_type": "LatentMultiply", "inputs": {"samples": ["capture_x", 0], "multiplier": NAN}}
    return finish(p, ["multiply", 0], "plain")


def grid(padding) -> dict:
    p = reuse()
    p["grid"] = {"class_type": "AVIImageGrid", "inputs": {"images": ["edited_decode", 0], "columns": 0, "padding": padding}}
    p["grid_preview"] = {"class_type": "PreviewImage", "inputs": {"images": ["grid", 0]}}
    del p["edited"]  # ComfyUI runs the valid outputs of a prompt and only reports the others: the grid is the only one
    return p


def inverted(width=SIZE, loaded=None, **invert_args) -> dict:
    """A flat image VAE-encoded (or a LATENT file through stock LoadLatent), inverted, captured from and finished."""
    run = dict(steps=STEPS, refine=0) | invert_args
    p = base_nodes(CKPT, "a photo of a male person", "unused", SIZE)
    p["image"] = {"class_type": "EmptyImage", "inputs": {"width": width, "height": width, "batch_size": 1, "color": 0x9060C0}}
    p["encode"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["image", 0], "vae": ["ckpt", 2]}}
    if loaded:
        p["encode"] = {"class_type": "LoadLatent", "inputs": {"latent": loaded}}
        del p["image"]
    p["inverted"] = invert(["encode", 0], **run)
    p["capture"] = capture("original", 0.6, steps=run["steps"], start=("inverted", 0))
    return finish(p, ["capture", 0])


def trajectory(keep: str, steps=50) -> dict:
    """Capture Trajectory with keep_steps (parsed before any sampling), its finished latent previewed."""
    p = base_nodes(CKPT, "a photo of a male person", "unused", SIZE)
    p["trajectory"] = {"class_type": "AVICaptureTrajectory", "inputs": {
        "model": ["ckpt", 0], "positive": ["original", 0], "negative": ["negative", 0], "latent_image": ["empty", 0],
        "seed": 1, "steps": steps, "cfg": 7.5, "sampler_name": "ddim", "scheduler": "ddim_uniform", "keep_steps": keep}}
    p["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["trajectory", 1], "vae": ["ckpt", 2]}}
    p["preview"] = {"class_type": "PreviewImage", "inputs": {"images": ["decode", 0]}}
    return p


def trajectory_distance(keep: str) -> dict:
    p = trajectory(keep, steps=STEPS)
    p["distance"] = {"class_type": "AVITrajectoryDistance", "inputs": {"trajectory": ["trajectory", 0], "p": 4, "side": "left",
                                                                        "what": "latent"}}
    p["table"] = {"class_type": "PreviewAny", "inputs": {"source": ["distance", 2]}}
    del p["preview"]
    return p


def sweep(factors: str, indices="0, 1, 2, 3") -> dict:
    """Singular Value Sweep of x's capture; its labels shown as text (the latents are not decoded)."""
    p = pair()
    p["sweep"] = {"class_type": "AVISingularValueSweep", "inputs": {"svd": ["svd_x", 0], "indices": indices, "factors": factors,
                                                                     "channel": -1}}
    p["labels"] = {"class_type": "PreviewAny", "inputs": {"source": ["sweep", 1]}}
    return p


def stacked_on_a_rho_sweep() -> dict:
    """A second AVI Integrate whose x is the decomposed y_pred of a two-ρ sweep (two latents) and z one capture."""
    p = patched(reuse(), "integrate", rho_list="0, 1")
    p["svd_y"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["integrate", 0]}}
    p["second"] = {"class_type": "AVIIntegrate", "inputs": {"phi": ["load", 0], "x": ["svd_y", 0], "z": ["svd_z", 0], "rho": 1.0,
                                                             "rho_list": "", "s_inf": "S", "z_vectors": "as trained"}}
    return finish(p, ["second", 0])


def same_capture_as_x_and_z() -> dict:
    """Train with x's SVD wired to z as well."""
    return patched(train(), "train", z=["svd_x", 0])


# (case, prompt, fragment of the message). Queue-time refusals: values ComfyUI 0.3.75 passes to V3 nodes unchecked.
QUEUE_CASES = [
    ("capture cfg NaN", lambda: patched(reuse(), "capture_x", cfg=NAN), "cfg must be a finite number from 0.0 to 100.0; got nan"),
    ("capture cfg 'nan' text", lambda: patched(reuse(), "capture_x", cfg="nan"), "cfg must be a finite number"),
    ("capture cfg Infinity", lambda: patched(reuse(), "capture_x", cfg=INF), "cfg must be a finite number"),
    ("capture timestep_fraction NaN", lambda: patched(reuse(), "capture_x", timestep_fraction=NAN), "timestep_fraction must be a finite number"),
    ("capture sampler 'bogus'", lambda: patched(reuse(), "capture_x", sampler_name="bogus"), "sampler_name must be one of 'euler'"),
    ("capture scheduler 'bogus'", lambda: patched(reuse(), "capture_z", scheduler="bogus"), "scheduler must be one of 'simple'"),
    ("capture steps 0", lambda: patched(reuse(), "capture_x", steps=0), "steps must be an integer from 1 to 10000; got 0"),
    ("capture seed -1", lambda: patched(reuse(), "capture_x", seed=-1), "seed must be an integer from 0 to"),
    ("capture step -2", lambda: patched(reuse(), "capture_x", step=-2), "step must be an integer from -1 to 10000; got -2"),
    ("inject cfg NaN", lambda: patched(reuse(), "edited_inject", cfg=NAN), "cfg must be a finite number"),
    ("inject sampler 'bogus'", lambda: patched(reuse(), "edited_inject", sampler_name="bogus"), "sampler_name must be one of 'from capture'"),
    ("integrate rho NaN", lambda: patched(reuse(), "integrate", rho=NAN), "rho must be a finite number from 0.0 to 2.0; got nan"),
    ("integrate rho 2.5", lambda: patched(reuse(), "integrate", rho=2.5), "rho must be a finite number from 0.0 to 2.0; got 2.5"),
    ("integrate s_inf 'bogus'", lambda: patched(reuse(), "integrate", s_inf="bogus"), "s_inf must be one of 'S', 'S+Δs', 'Sx', 'Sx→S', 'Sx→Sz'; got 'bogus'"),
    ("svd space 'bogus'", lambda: patched(reuse(), "svd_x", space="bogus"), "space must be one of 'x0', 'latent'; got 'bogus'"),
    ("inject target_steps -2", lambda: patched(reuse(), "edited_inject", target_steps=-2), "target_steps must be an integer from -1"),
    ("integrate z_vectors 'bogus'", lambda: patched(reuse(), "integrate", z_vectors="bogus"), "z_vectors must be one of 'as trained'"),
    ("train learning_rate NaN", lambda: patched(train(), "train", learning_rate=NAN), "learning_rate must be a finite number"),
    ("train lambda_1 -Infinity", lambda: patched(train(), "train", lambda_1=-INF), "lambda_1 must be a finite number"),
    ("train rho NaN", lambda: patched(train(), "train", rho=NAN), "rho must be a finite number"),
    ("train z_vectors 'middle'", lambda: patched(train(), "train", z_vectors="middle"), "z_vectors must be one of 'tail', 'head', 'aligned'; got 'middle'"),
    ("train hidden 0", lambda: patched(train(), "train", hidden=0), "hidden must be an integer from 8 to 16384; got 0"),
    ("svd sigma NaN", lambda: patched(reuse(), "svd_x", sigma=NAN), "sigma must be a finite number"),
    ("subspace side 'bogus'", lambda: explore({"class_type": "AVISubspaceDistance", "inputs": {"p": 4, "side": "bogus"}}),
     "side must be one of 'left', 'right'; got 'bogus'"),
    ("subspace p 0", lambda: explore({"class_type": "AVISubspaceDistance", "inputs": {"p": 0, "side": "left"}}), "p must be an integer from 1"),
    ("scale factor NaN", lambda: explore({"class_type": "AVIScaleSingularValue", "inputs": {"index": 0, "factor": NAN, "channel": -1}}),
     "factor must be a finite number"),
    ("save if_exists 'bogus' on an existing name", lambda: train("good", if_exists="bogus"),
     "if_exists must be one of 'add number', 'error', 'overwrite'; got 'bogus'"),
    ("load phi_name '../../../etc/passwd'", lambda: reuse("../../../etc/passwd"), "phi_name must be one of"),
    ("load phi_name not in models/avi", lambda: reuse("nope.safetensors"), "phi_name must be one of"),
    ("grid padding -1", lambda: grid(-1), "padding must be an integer from 0 to 256; got -1"),
]

def linked_nan_cfg() -> dict:
    """cfg NaN from a stock Float node over a link: unknown at queue time, refused when Inject runs."""
    p = reuse()
    p["nan"] = {"class_type": "PrimitiveFloat", "inputs": {"value": NAN}}
    p["edited_inject"]["inputs"]["cfg"] = ["nan", 0]
    return p


# Refusals when the prompt runs: linked values, wrong pairs, wrong latents, bad file names.
RUN_CASES = [
    ("inject cfg NaN over a link", linked_nan_cfg, "cfg must be a finite number from 0.0 to 100.0; got nan"),
    ("save a path of over 4200 bytes", lambda: train("/".join(["d" * 200] * 21) + "/x"), "bytes long; paths hold at most 4095 bytes"),
    ("integrate x, z of different seeds", lambda: reuse(z={"seed": 2}), "x and z must be captured with the same seed"),
    ("integrate x at 0.6·T, Φ trained at 0.8·T", lambda: reuse(tx=0.6), "this AVI Φ was trained on x at t = "),
    ("integrate rho_list '0, nan'", lambda: patched(reuse(), "integrate", rho_list="0, nan"), "rho must be a number in [0, 2]; got float nan"),
    ("integrate rho_list '0, 3'", lambda: patched(reuse(), "integrate", rho_list="0, 3"), "rho must be in [0, 2] (above 1 extrapolates); got 3.0"),
    ("train x, z of different samplers", lambda: train(z={"sampler": "euler"}), "x and z must be captured with the same sampler"),
    ("train x, z of different schedulers", lambda: train(z={"scheduler": "normal"}), "x and z must be captured with the same scheduler"),
    ("train swapped fractions (Tz > Tx)", lambda: train(tx=0.5, tz=0.8), "z must be captured later in denoising than x (Tz < Tx"),
    ("train x, z on the same step (steps 1)", lambda: train(x={"steps": 1}, z={"steps": 1}), "x and z landed on the same step (0 of 1"),
    ("svd of a NaN latent", lambda: multiplied(NAN), "latent holds 256 NaN/Inf value(s) out of 256"),
    ("inject of a NaN latent", nan_into_inject, "NaN/Inf value(s)"),
    ("svd of a latent changed after capture", lambda: multiplied(2.0), "latent was changed after it was captured"),
    ("scale channel 7 of 4", lambda: explore({"class_type": "AVIScaleSingularValue", "inputs": {"index": 0, "factor": 2.0, "channel": 7}}),
     "channel must be -1 (every channel) or 0 to 3 for this 4-channel latent; got 7"),
    ("scale index 8 of N = 8", lambda: explore({"class_type": "AVIScaleSingularValue", "inputs": {"index": 8, "factor": 2.0, "channel": -1}}),
     "index must be an integer with 0 <= index < N = 8; got 8"),
    ("subspace p 9 > N = 8", lambda: explore({"class_type": "AVISubspaceDistance", "inputs": {"p": 9, "side": "left"}}), "p must satisfy 1 <= p <= N = 8"),
    ("save through a link out of models/avi", lambda: train("link/escaped"), "leads through a link to"),
    ("save a 250-character name", lambda: train("a" * 250), "file names hold at most 255 bytes"),
    ("save '../escape'", lambda: train("../escape"), "filename must be a plain name"),
    ("save '/tmp/absolute'", lambda: train("/tmp/absolute"), "filename must be a plain name"),
    ("save if_exists 'error' on an existing name", lambda: train("good", if_exists="error"), "good.safetensors already exists"),
    # Second round (issue #23): inputs an attack on the server still found.
    ("train λ1 = λ2 = λ3 = λ4 = 0", lambda: patched(train(), "train", lambda_1=0.0, lambda_2=0.0, lambda_3=0.0, lambda_4=0.0),
     "the loss weights λ1..λ4 are all 0, so the loss is 0 at every step and Φ would stay untrained"),
    ("train x == z (one capture wired to both)", same_capture_as_x_and_z,
     "x and z are the same capture (step 1 of 10, t = 801): connect the original prompt's capture to x"),
    ("train x, z both asked for 0.8·T", lambda: train(tx=0.8, tz=0.8),
     "x and z were both asked for timestep_fraction 0.8 (step 1 of 10, t = 801): capture z later in denoising"),
    ("sweep factors '1e308'", lambda: sweep("0, 1e308"), "factors must hold numbers from -100 to 100; got '1e308'"),
    ("sweep factor -1e6", lambda: sweep("-1e6"), "factors must hold numbers from -100 to 100; got '-1e6'"),
    ("sweep factors 'inf'", lambda: sweep("1, inf"), "factors must hold numbers from -100 to 100; got 'inf'"),
    ("sweep an index of 10,000 digits", lambda: sweep("1", "9" * 10000),
     "indices must hold whole numbers from 0 to 7 (N = 8 singular values); got '9999"),
    ("invert a 16-channel LATENT (4-channel model)", lambda: inverted(loaded="c16.latent"),
     "latent has 16 channels; this model (SD15 latents) takes 4"),
    ("invert a 3-channel LATENT (4-channel model)", lambda: inverted(loaded="c3.latent"), "latent has 3 channels; this model"),
    ("invert an 8×8 px image", lambda: inverted(width=8),
     "latent is 1×1 latent cells (8×8 px); AVI decomposes each channel as an H×W matrix and needs at least 2×2 cells (16×16 px)"),
    ("invert steps 2000 on 'simple' (σ repeats)", lambda: inverted(steps=2000, scheduler="simple"),
     "the simple schedule repeats noise levels at steps 2000 (it holds 1000 distinct ones on this model)"),
    ("capture after a ddim inversion with heun", lambda: patched(inverted(), "capture", sampler_name="heun"),
     "uses sampler 'heun'; set sampler to 'ddim' or 'euler'"),
    ("keep_steps '49-0'", lambda: trajectory("49-0"),
     "keep_steps '49-0' runs backwards; write a range from the lower step to the higher, e.g. '0-49'"),
    ("keep_steps '0-49/0'", lambda: trajectory("0-49/0"), "keep_steps '0-49/0' has stride 0"),
    ("keep_steps '0-60'", lambda: trajectory("0-60"), "keep_steps '0-60' does not fit 50 sampling steps (steps 0..49)"),
    ("keep_steps of 10,000 digits", lambda: trajectory("9" * 10000), "does not fit 50 sampling steps (steps 0..49)"),
    ("second attribute on a two-ρ y_pred", stacked_on_a_rho_sweep,
     "x holds 2 latent(s) and z 1; x and z must be batches of one size: to stack a second attribute, decompose a y_pred of one ρ"),
    ("distance along a trajectory of one kept step", lambda: trajectory_distance("3"),
     "trajectory keeps 1 step (3); distances between consecutive steps need at least 2"),
    ("save 'CON'", lambda: train("CON"),
     "filename 'CON' would not work on Windows: 'CON' is a device name there (CON, PRN, AUX, NUL, COM1-9 and LPT1-9"),
    ("save 'NUL'", lambda: train("NUL"), "'NUL' is a device name there"),
    ("save 'faces/nul.young'", lambda: train("faces/nul.young"), "'nul.young' is the device name NUL with an extension there"),
    ("save 'com1'", lambda: train("com1"), "'com1' is a device name there"),
    ("save 'LPT9.safetensors'", lambda: train("LPT9.safetensors"), "'LPT9' is a device name there"),
    ("save 'young.' (trailing dot)", lambda: train("young."), "'young.' ends with a dot or a space, which Windows drops"),
    ("save 'faces /young' (trailing space)", lambda: train("faces /young"), "'faces ' ends with a dot or a space"),
]


def good_phi(server) -> tuple:
    """(tensors, metadata) of the fixture's trained Φ, to tamper with."""
    path = os.path.join(server.base_dir, "models", "avi", GOOD)
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        return load_file(path), dict(f.metadata())


def write_phi(server, name, tensors, meta) -> str:
    save_file(tensors, os.path.join(server.base_dir, "models", "avi", name), metadata=meta)
    return name


def write_bytes(server, name, data: bytes) -> str:
    with open(os.path.join(server.base_dir, "models", "avi", name), "wb") as f:
        f.write(data)
    return name


class Payload:
    """A pickle that would create a folder if anything unpickled it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def tampered(server, case: str) -> str:
    """Write the tampered Φ file of a case into models/avi; its name."""
    t, m = good_phi(server)
    name = re.sub(r"[^a-z0-9]+", "_", case.lower()).strip("_") + ".safetensors"
    edits = {
        "claims 256×256, hidden 4096": dict(m, **{"avi.height": "256", "avi.width": "256", "avi.k": "128", "avi.hidden": "4096"}),
        "hidden 100000": dict(m, **{"avi.hidden": "100000"}),
        "height 1000000": dict(m, **{"avi.height": "1000000"}),
        "512×512 with hidden 16384": dict(m, **{"avi.height": "512", "avi.width": "512", "avi.k": "256", "avi.hidden": "16384"}),
        "hidden of 5000 digits": dict(m, **{"avi.hidden": "9" * 5000}),
        "timestep_x NaN": dict(m, **{"avi.timestep_x": "NaN"}),
        "k = N": dict(m, **{"avi.k": "8"}),
        "format version 99": dict(m, **{"avi.format_version": "99"}),
        "another tool's file": {"format": "pt"},
    }
    if case in edits:
        return write_phi(server, name, t, edits[case])
    if case == "NaN weights":
        return write_phi(server, name, dict(t, **{"head_s.bias": torch.full((8,), NAN)}), m)
    if case == "integer weights":
        return write_phi(server, name, dict(t, **{"head_s.bias": torch.zeros(8, dtype=torch.int64)}), m)
    if case == "an extra tensor":
        return write_phi(server, name, dict(t, junk=torch.zeros(1000)), m)
    if case == "junk bytes":
        return write_bytes(server, name, b"\x00" * 100)
    if case == "a pickle":
        return write_bytes(server, name, pickle.dumps(Payload(os.path.join(server.base_dir, "pickle_ran"))))
    if case == "header length 2**60":
        return write_bytes(server, name, struct.pack("<Q", 2**60) + b"{}")
    raise KeyError(case)


FILE_CASES = [
    ("claims 256×256, hidden 4096", r"weights do not match a Φ for 4×256×256 (C×H×W) with hidden = 4096"),
    ("hidden 100000", "hidden = 100000 is above the limit of 16384"),
    ("height 1000000", "height = 1000000 is above the limit of 512"),
    ("512×512 with hidden 16384", "has 4,848,665,600 parameters, above the limit of 1,073,741,824"),
    ("hidden of 5000 digits", "metadata field avi.hidden holds a number too long to read (5000 characters)"),
    ("timestep_x NaN", "timestep_x must be a timestep from 0 to 1000; got float nan"),
    ("k = N", "k = 8 does not fit N = 8"),
    ("format version 99", "format version 99 is newer than this pack reads (1)"),
    ("another tool's file", "is not an AVI Φ file (no avi.format_version in its metadata)"),
    ("NaN weights", "weights ['head_s.bias'] are not finite floating-point values"),
    ("integer weights", "are not finite floating-point values (dtype must be one of"),
    ("an extra tensor", "unexpected ['junk']"),
    ("junk bytes", "cannot read AVI Φ file"),
    ("a pickle", "cannot read AVI Φ file"),
    ("header length 2**60", "cannot read AVI Φ file"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The server with the pack and a tiny checkpoint; models/avi holds a trained Φ and a link out of the folder."""
    root = tmp_path_factory.mktemp("hardening")
    base, outside = root / "base", root / "elsewhere"
    outside.mkdir()
    checkpoint = base / "models" / "checkpoints" / CKPT
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, "devkit", "write_tiny_checkpoint.py"), str(checkpoint)],
                   cwd=REPO_ROOT, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    nodes = {PACK_NAME: REPO_ROOT, "avi-tiny-models": os.path.join(REPO_ROOT, "devkit", "tiny_model_pack")}
    with SingleThreadServer(base, custom_nodes=nodes, inputs=LATENT_FILES) as srv:
        srv.wait_for(srv.queue_prompt(train("good")), timeout=120)
        os.symlink(outside, base / "models" / "avi" / "link")
        srv.outside = str(outside)
        srv.runs = 0
        yield srv
    width = max(len(c) for c in MESSAGES) if MESSAGES else 0
    print("\n" + "\n".join(f"{case:<{width}}  {message}" for case, message in MESSAGES.items()))


def refusal(server, prompt) -> str:
    """The message a prompt is refused with, at queue time or when it runs; fails if it succeeds."""
    try:
        prompt_id = server.queue_prompt(prompt)
    except ServerError as e:
        return str(e)
    with pytest.raises(ServerError) as failed:
        server.wait_for(prompt_id, timeout=120)
    return str(failed.value)


def pack_message(server, message: str) -> str:
    """The pack's own message out of a rejection (after "input - ") or an execution error (after "Error: "), for the table."""
    for line in message.splitlines():
        for marker in (" - ", "Error: "):
            if marker in line:
                return line.split(marker, 1)[1].replace(server.base_dir, "<base>")
    return message.splitlines()[0]


def files_outside_avi(server) -> list:
    """Files under the base and the link's target other than models/avi, previews, settings, logs and the test's inputs."""
    base = server.base_dir
    allowed = [os.path.join(base, d) for d in (os.path.join("models", "avi"), os.path.join("models", "checkpoints"), "temp", "user")]
    found = []
    for top in (base, server.outside):
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if os.path.join(folder, d) not in allowed]
            given = LATENT_FILES if folder == os.path.join(base, "input") else ()
            found += [os.path.join(folder, f) for f in files if f not in (LOG_NAME, PREVIOUS_LOG_NAME, *given)]
    return found


def check_still_sound(server) -> None:
    """A valid prompt runs (a new ρ, so it is not served from the cache), nothing escaped models/avi, no temporary file."""
    server.runs += 1
    entry = server.wait_for(server.queue_prompt(reuse(rho=0.5 + server.runs / 1000)), timeout=120)
    assert entry["status"]["status_str"] == "success" and "edited" in entry["outputs"]
    assert files_outside_avi(server) == []
    avi = os.path.join(server.base_dir, "models", "avi")
    assert [f for _, _, files in os.walk(avi) for f in files if f.endswith(".partial")] == []


@pytest.mark.parametrize("case, build, fragment", QUEUE_CASES, ids=[c[0] for c in QUEUE_CASES])
def test_refused_when_queued(server, case, build, fragment):
    with pytest.raises(ServerError) as refused:
        server.queue_prompt(build())
    message = str(refused.value)
    assert "prompt rejected (400)" in message and fragment in message, message
    MESSAGES[case] = pack_message(server, message)
    check_still_sound(server)


@pytest.mark.parametrize("case, build, fragment", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_refused_when_run(server, case, build, fragment):
    message = refusal(server, build())
    assert fragment in message, message
    MESSAGES[case] = pack_message(server, message)
    check_still_sound(server)


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM) in bytes."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


@pytest.mark.parametrize("case, fragment", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_tampered_phi_file_is_refused(server, case, fragment):
    name = tampered(server, case)
    size = os.path.getsize(os.path.join(server.base_dir, "models", "avi", name))
    peak = peak_rss(server.proc.pid)
    message = refusal(server, reuse(name))
    assert fragment in message and name in message, message
    assert peak_rss(server.proc.pid) - peak < 64 * 2**20 + 4 * size, "loading allocated far more than the file's size"
    assert not os.path.exists(os.path.join(server.base_dir, "pickle_ran")), "nothing in a Φ file is ever unpickled"
    MESSAGES[f"load: {case}"] = pack_message(server, message)
    check_still_sound(server)


def test_capture_reports_the_fraction_it_reached(server):
    p = patched(patched(reuse(), "capture_x", steps=1, seed=7), "capture_z", steps=1, seed=7)
    refusal(server, p)  # Φ's timesteps do not fit a one-step capture: refused, but the capture ran and said where it landed
    # One ddim_uniform step starts at t = 1: the text says so instead of "≈ 0.8·T".
    lines = [line for line in server.log_text().splitlines() if "captured at step 0 of 1 " in line and "seed 7" in line]
    assert lines and all("(t = 1 ≈ 0.00·T," in line for line in lines), lines
    warning = [line for line in server.log_lines() if line.startswith("warning: 0.8·T was asked")]
    assert warning and "with 1 ddim_uniform steps the nearest step (0) is at 0.00·T" in warning[-1], server.log_text()[-3000:]
    MESSAGES["capture 0.8·T with steps 1"] = warning[-1]
    check_still_sound(server)


def test_interrupted_training_saves_nothing(server):
    p = train("interrupted")
    p["train"]["inputs"].update(epochs=1000, samples_per_pair=20, seed=1)
    prompt_id = server.queue_prompt(p)
    deadline = time.monotonic() + 60
    while not server.get("/queue")["queue_running"] and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the cached captures pass at once: training is under way
    request = urllib.request.Request(server.url + "/interrupt", data=json.dumps({"prompt_id": prompt_id}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    with pytest.raises(ServerError, match="interrupted at node train"):
        server.wait_for(prompt_id, timeout=120)
    assert not os.path.exists(os.path.join(server.base_dir, "models", "avi", "interrupted.safetensors"))
    MESSAGES["POST /interrupt during training"] = "interrupted at node train (AVITrainPhi); nothing saved"
    check_still_sound(server)


def node_texts(server, prefix: str) -> list:
    """Lines the pack's nodes wrote (show_text logs each) that start with prefix."""
    return [line for line in server.log_lines() if line.startswith(prefix)]


def test_invert_reports_the_steps_its_schedule_has(server):
    # ddim_uniform strides over the model's 1000 noise levels: steps 10000 runs 999 steps, and the text says so.
    p = inverted(steps=10000)
    p = {k: v for k, v in p.items() if k in ("ckpt", "original", "negative", "image", "encode", "inverted")}
    p["show"] = {"class_type": "PreviewAny", "inputs": {"source": ["inverted", 0]}}
    server.wait_for(server.queue_prompt(p), timeout=300)
    text = node_texts(server, "inverted along ")[-1]
    assert text.startswith("inverted along 999 ddim/ddim_uniform steps (steps 10000: the ddim_uniform schedule has 999 on "
                           "this model), cfg 7.5, refine 0: 999 model evaluations"), text
    MESSAGES["invert steps 10000 on ddim_uniform"] = text
    check_still_sound(server)


def preview_pixels(server, entry: dict, node: str):
    """The pixels of a PreviewImage output, read back from temp/."""
    from PIL import Image

    image = entry["outputs"][node]["images"][0]
    with Image.open(os.path.join(server.base_dir, image["type"], image["subfolder"], image["filename"])) as f:
        return f.convert("RGB").tobytes()


def test_a_capture_may_retrace_an_inversion_with_ddim_or_euler(server):
    # ComfyUI's ddim is its euler sampler function (other noise only for a noise mask): the same trajectory.
    p = inverted(sampler="euler")
    p["capture_euler"] = capture("original", 0.6, steps=STEPS, sampler="euler", start=("inverted", 0))
    finish(p, ["capture_euler", 0], "euler_edit")
    entry = server.wait_for(server.queue_prompt(p), timeout=120)
    assert preview_pixels(server, entry, "edited") == preview_pixels(server, entry, "euler_edit")
    MESSAGES["capture with ddim after an euler inversion"] = "runs; the same image as an euler capture"
    check_still_sound(server)


def test_a_large_sweep_says_what_decoding_it_takes(server):
    server.wait_for(server.queue_prompt(sweep(", ".join(f"{0.01 * i:g}" for i in range(200)))), timeout=120)
    text = node_texts(server, "warning: 800 latents")[-1]
    assert "to finish and decode. Measured on a CPU, VAE Decode takes 0.1 s and 10 MB per latent with a TAESD-size VAE" in text, text
    assert re.search(r"at once, as ComfyUI decodes \d+ at a time with [\d.]+ [MG]B free", text), text
    server.wait_for(server.queue_prompt(sweep("0, 0.5, 1.5, 2")), timeout=120)
    assert node_texts(server, "16 latents of 64×64 px to finish and decode."), "a small sweep states its cost without a warning"
    MESSAGES["sweep 200 factors × 4 indices"] = text
    check_still_sound(server)


def test_at_least_forty_cases():
    assert len(QUEUE_CASES) + len(RUN_CASES) + len(FILE_CASES) + 2 >= 40
    assert math.isnan(NAN)
