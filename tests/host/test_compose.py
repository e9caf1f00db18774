"""Two learned attributes on one image: AVI Integrate on the result of another, with the capture record kept along the chain."""
import pytest
import torch

from devkit.comfy_host import ExecutionFailed
from tests.host.avi_prompts import SMALL_TRAINING, capture, edit_prompt, inject

PACK_TRAINING = dict(SMALL_TRAINING, k=1, z_vectors="aligned")


def integrate(phi: str, x: str, z: str, rho: float) -> dict:
    return {"class_type": "AVIIntegrate", "inputs": {"phi": [phi, 0], "x": [x, 0], "z": [z, 0], "rho": rho, "rho_list": "",
                                                     "s_inf": "Sx→S", "z_vectors": "as trained"}}


def composed(ckpt: str, space: str = "x0", second_rho: float = 1.25) -> dict:
    """The edit graph, a second target prompt with its own Φ, and that Φ applied to the first edit's y_pred."""
    p = edit_prompt(ckpt, size=64, steps=20, tx=0.6, tz=0.5, rho=1.25, s_inf="Sx→S", training=PACK_TRAINING, space=space)
    p["target_2"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo of a smiling male person", "clip": ["ckpt", 1]}}
    p["capture_z2"] = capture("target_2", 0.5, steps=20)
    p["svd_z2"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["capture_z2", 0], "space": space}}
    p["train_2"] = {"class_type": "AVITrainPhi", "inputs": {"x": ["svd_x", 0], "z": ["svd_z2", 0], **PACK_TRAINING}}
    p["svd_y1"] = {"class_type": "AVISVDDecompose", "inputs": {"latent": ["integrate", 0], "space": space}}
    p["integrate_2"] = integrate("train_2", "svd_y1", "svd_z2", second_rho)
    p["inject_2"] = inject(["integrate_2", 0])
    return p


def test_a_second_attribute_stacks_on_the_first_and_rho_0_keeps_the_first(host, tiny_ckpt):
    p = composed(tiny_ckpt["eps"])
    p["integrate_2_off"] = integrate("train_2", "svd_y1", "svd_z2", 0.0)
    p["only_second"] = integrate("train_2", "svd_x", "svd_z2", 1.25)
    result = host.run(p, outputs=["integrate", "integrate_2", "integrate_2_off", "only_second", "inject_2"])
    y1, y12, off = (result.output(n) for n in ("integrate", "integrate_2", "integrate_2_off"))
    assert y1["avi_capture"].x0 is not None and y1["avi_capture"].x0.shape == y1["samples"].shape, "y_pred records its edited x0"
    assert y1["avi_capture"].x0.abs().max() > 0.1, "the edited x0, not a placeholder"
    assert (off["samples"] - y1["samples"]).abs().max() < 1e-4, "ρ = 0 on the second attribute returns the first edit"
    assert (y12["samples"] - y1["samples"]).norm() > 0.05 * y1["samples"].norm(), "the second attribute changes it"
    second_alone = result.output("only_second")["samples"]
    assert (y12["samples"] - second_alone).norm() > 0.05 * second_alone.norm(), "both attributes, not the second alone"
    assert y12["avi_capture"].step == y1["avi_capture"].step and y12["avi_capture"].start == y1["avi_capture"].start
    assert torch.isfinite(result.output("inject_2")["samples"]).all()


def test_composing_latent_space_edits_works_and_x0_of_them_is_refused(host, tiny_ckpt):
    result = host.run(composed(tiny_ckpt["eps"], space="latent"), outputs=["inject_2"])
    assert torch.isfinite(result.output("inject_2")["samples"]).all()
    p = composed(tiny_ckpt["eps"], space="latent")
    p["svd_y1"]["inputs"]["space"] = "x0"
    with pytest.raises(ExecutionFailed, match="space 'x0' needs the model's x0 prediction"):
        host.run(p, outputs=["inject_2"])
