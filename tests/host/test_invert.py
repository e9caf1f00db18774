"""Invert Latent: captures start from an inverted latent, the image comes back without an edit, mismatches are refused."""
import pytest
import torch

from bench import digit_metrics as M
from bench.real_images import held_out_digits, to_input_folder
from devkit.comfy_host import ExecutionFailed
from tests.host.avi_prompts import SMALL_TRAINING, base_nodes, capture, edit_prompt, inject, invert, ksampler

RUN = dict(steps=20, sampler="ddim", scheduler="ddim_uniform")


def generated_then_inverted(ckpt: str, refine: int, cfg: float = 7.5) -> dict:
    """A KSampler latent (the 'image'), inverted at its cfg, captured at 0.6·T and finished unedited."""
    p = base_nodes(ckpt, "a photo of a castle", "a photo of a dilapidated castle", 64)
    p["image"] = ksampler(seed=5, cfg=cfg, **RUN)
    p["inverted"] = invert(["image", 0], cfg=cfg, refine=refine, **RUN)
    p["capture"] = capture("original", 0.6, cfg=cfg, start=("inverted", 0), **RUN)
    p["finish"] = inject(["capture", 0], cfg=cfg)
    return p


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_inverting_a_latent_and_finishing_it_unedited_gives_it_back(host, tiny_ckpt, prediction):
    errors = {}
    for refine in (0, 3):
        result = host.run(generated_then_inverted(tiny_ckpt[prediction], refine), outputs=["image", "finish", "inverted"])
        image, back = result.output("image")["samples"], result.output("finish")["samples"]
        errors[refine] = relative(back, image)
        noise = result.output("inverted")["samples"]
        assert 0.5 < float(noise.std()) < 2.0, "the inverted latent is noise of about unit variance"
    # measured on the random-weight tiny eps model at cfg 7.5, 20 steps: plain 0.22, refine 3 0.0022
    assert errors[3] < 5e-3, errors
    assert errors[0] > 5 * errors[3], errors


def test_capture_from_an_inverted_latent_reports_it_and_warns_about_another_cfg(host, tiny_ckpt):
    p = generated_then_inverted(tiny_ckpt["eps"], 1)
    p["other_cfg"] = capture("original", 0.6, cfg=3.0, start=("inverted", 0), **RUN)
    result = host.run(p, outputs=["capture", "other_cfg"])
    texts = {d["node_id"]: d["text"] for d in result.events("progress_text")}
    assert "from an inverted latent" in texts["capture"] and "note" not in texts["capture"]
    assert "inverted at cfg 7.5 and is sampled at cfg 3" in texts["other_cfg"]
    info = result.output("capture")["avi_capture"]
    assert info.start.startswith("inverted latent (20 ddim/ddim_uniform steps, cfg 7.5, refine 1")
    assert "avi_inversion" not in result.output("capture"), "a captured latent is no longer a starting noise"


@pytest.mark.parametrize("change, message", [
    (dict(steps=25), "inverted along 20 ddim/ddim_uniform steps.*uses steps 25.*set steps to 20"),
    (dict(scheduler="karras"), "uses scheduler 'karras'; set scheduler to 'ddim_uniform'"),
    (dict(sampler="heun"), "uses sampler 'heun'; set sampler to 'ddim' or 'euler'"),
])
def test_a_capture_off_the_inverted_trajectory_is_refused(host, tiny_ckpt, change, message):
    p = generated_then_inverted(tiny_ckpt["eps"], 0)
    p["capture"] = capture("original", 0.6, start=("inverted", 0), **dict(RUN, **change))
    with pytest.raises(ExecutionFailed, match=message):
        host.run(p, outputs=["capture"])


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_ddim_and_euler_captures_of_one_inversion_are_equal(host, tiny_ckpt, prediction):
    # ComfyUI's ddim is its euler sampler function (other noise only for a noise mask's inpainting).
    p = generated_then_inverted(tiny_ckpt[prediction], 0)
    p["inverted"]["inputs"]["sampler_name"] = "euler"
    p["euler"] = capture("original", 0.6, start=("inverted", 0), **dict(RUN, sampler="euler"))
    result = host.run(p, outputs=["capture", "euler"])
    ddim, euler = (result.output(n) for n in ("capture", "euler"))
    assert torch.equal(ddim["samples"], euler["samples"]) and torch.equal(ddim["avi_capture"].x0, euler["avi_capture"].x0)
    assert ddim["avi_capture"].sampler == "ddim", "the capture records its own sampler, which Inject Latent continues with"


def test_a_masked_capture_of_an_inversion_must_keep_its_sampler(host, tiny_ckpt):
    # With a noise mask ddim re-noises the kept region with its own noise, euler with the given one: not one trajectory.
    p = generated_then_inverted(tiny_ckpt["eps"], 0)
    p["mask"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 64}}
    p["masked"] = {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["inverted", 0], "mask": ["mask", 0]}}
    p["capture"] = capture("original", 0.6, start=("masked", 0), **dict(RUN, sampler="euler"))
    with pytest.raises(ExecutionFailed, match="uses sampler 'euler'; set sampler to 'ddim' \\(the capture"):
        host.run(p, outputs=["capture"])


def test_an_inverted_latent_for_another_model_or_changed_since_is_refused(host, tiny_ckpt):
    p = generated_then_inverted(tiny_ckpt["eps"], 0)
    p["other"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": tiny_ckpt["v"]}}
    p["capture"]["inputs"]["model"] = ["other", 0]
    with pytest.raises(ExecutionFailed, match="inverted with a eps SD15 model; this model is v SD15"):
        host.run(p, outputs=["capture"])
    p = generated_then_inverted(tiny_ckpt["eps"], 0)
    p["scaled"] = {"class_type": "LatentMultiply", "inputs": {"samples": ["inverted", 0], "multiplier": 1.5}}
    p["capture"]["inputs"]["latent_image"] = ["scaled", 0]
    with pytest.raises(ExecutionFailed, match="changed after Invert Latent made it"):
        host.run(p, outputs=["capture"])


def test_x_and_z_must_start_from_the_same_noise(host, tiny_ckpt):
    p = edit_prompt(tiny_ckpt["eps"], size=64, steps=20, start=("inverted", 0))
    p["image"] = ksampler(seed=5, **RUN)
    p["inverted"] = invert(["image", 0], refine=0, **RUN)
    p["capture_z"]["inputs"]["latent_image"] = ["empty", 0]
    with pytest.raises(ExecutionFailed, match="same noise.*x from inverted latent.*z from seed 1"):
        host.run(p, outputs=["edited"])


def test_bad_latents_are_refused_by_name(host, tiny_ckpt):
    p = base_nodes(tiny_ckpt["eps"], "a castle", "unused", 64)
    p["nan"] = {"class_type": "LatentMultiply", "inputs": {"samples": ["empty", 0], "multiplier": float("inf")}}
    p["inverted"] = invert(["nan", 0], **RUN)
    with pytest.raises(Exception, match="NaN/Inf|multiplier"):
        host.run(p, outputs=["inverted"])


def edit_of_real_digits(ckpt: str, names: list, cfg: float, refine: int, tx: float = 0.6) -> dict:
    """Load Image → VAE Encode → invert → the pack's default edit ('bold') and x finished unedited."""
    p = edit_prompt(ckpt, original="a handwritten 3", target="a bold handwritten 3", size=128, steps=50,
                    start=("inverted", 0), tx=tx, tz=0.5, rho=1.25, s_inf="Sx→S",
                    training=dict(SMALL_TRAINING, k=1, z_vectors="aligned", hidden=128, epochs=3, samples_per_pair=500))
    p["negative"]["inputs"]["text"] = ""
    p["load"] = {"class_type": "LoadImage", "inputs": {"image": names[0]}}
    p["encode"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["load", 0], "vae": ["ckpt", 2]}}
    p["round_trip"] = {"class_type": "VAEDecode", "inputs": {"samples": ["encode", 0], "vae": ["ckpt", 2]}}
    p["inverted"] = invert(["encode", 0], steps=50, cfg=cfg, refine=refine)
    for node in ("capture_x", "capture_z"):
        p[node]["inputs"]["cfg"] = cfg
    for node in ("inject", "unedited_inject"):
        p[node]["inputs"]["cfg"] = cfg
    return p


def test_a_real_digit_comes_back_after_inversion_and_the_default_edit_changes_it(host, digits_ckpt):
    images, labels = held_out_digits(2, offset=3)  # a 3 and a 4 the model never saw
    names = to_input_folder(images, "avi_test_real")
    judge = M.Judge.load()
    for name, label in zip(names, labels):
        p = edit_of_real_digits(digits_ckpt, [name], cfg=5.0, refine=2)
        p["original"]["inputs"]["text"] = f"a handwritten {int(label)}"
        p["target"]["inputs"]["text"] = f"a bold handwritten {int(label)}"
        result = host.run(p, outputs=["round_trip", "unedited_decode", "decode"])
        round_trip, back, edited = (result.output(n).permute(0, 3, 1, 2) for n in ("round_trip", "unedited_decode", "decode"))
        # measured (bench/bench_real.py): pixel RMS to the VAE round trip ~0.001 at refine 2, cfg 5
        assert float((back - round_trip).pow(2).mean().sqrt()) < 0.01
        assert int(judge.classify(back)[0][0]) == int(label)
        assert float((edited - back).pow(2).mean().sqrt()) > 0.03, "the edit changes the real digit"
