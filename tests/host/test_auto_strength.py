"""Inject Latent's automatic strength (rho_pick 'auto') on the shipped digits model, through the real executor."""
import pytest

from avi_core.defaults import PACK
from avi_core.strength import pick_strength
from tests.host.avi_prompts import SMALL_TRAINING, edit_prompt, inject

SWEEP = "0, 0.5, 1, 1.25, 1.5, 2"  # the workflows' sweep for the auto pick
CFG = 5.0  # the digits workflows' cfg (20 steps and a small Φ keep the test short)


def auto_prompt(ckpt: str, batch: int = 1, steps: int = 20, training: dict = None) -> dict:
    """The pack's edit (x0 SVDs, Sx→S) with a ρ sweep, finished twice under the target: every ρ, and the auto pick."""
    p = edit_prompt(ckpt, original="a handwritten 3", target="a bold handwritten 3", batch=batch, seed=3, steps=steps, tx=PACK["tx"],
                    tz=PACK["tz"], rho_list=SWEEP, s_inf=PACK["s_inf"],
                    training=training or dict(SMALL_TRAINING, k=PACK["k"], z_vectors=PACK["z_vectors"]))
    for side in ("capture_x", "capture_z"):
        p[side]["inputs"]["cfg"] = CFG
    p["inject"] = inject(["integrate", 0], cfg=CFG, target_steps=-1)
    p["auto"] = dict(inject(["integrate", 0], cfg=CFG, target_steps=-1))
    p["auto"]["inputs"]["rho_pick"] = "auto"
    p["auto_decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["auto", 0], "vae": ["ckpt", 2]}}
    p["auto_preview"] = {"class_type": "PreviewImage", "inputs": {"images": ["auto_decode", 0]}}
    return p


def picked(result) -> tuple:
    """(the ρ per seed, the agreement per seed and ρ) as the node's text gives them."""
    text, = [d["text"] for d in result.events("progress_text") if d["node_id"] == "auto"]
    first, second = text.splitlines()
    assert first.startswith("auto strength: ρ = "), text
    rhos = [float(part.split("=")[1].split()[0]) for part in first.removeprefix("auto strength: ").split(", ")]
    return rhos, [[float(a) for a in seed.split(", ")] for seed in second.split(": ", 1)[1].split("; ")]


def test_auto_finishes_one_latent_per_seed_the_one_of_the_sweep_it_names(host, digits_ckpt):
    rhos = [float(r) for r in SWEEP.split(", ")]
    result = host.run(auto_prompt(digits_ckpt, batch=2))
    every, auto = result.output("inject")["samples"], result.output("auto")["samples"]
    assert every.shape[0] == len(rhos) * 2 and auto.shape[0] == 2
    chosen, agreement = picked(result)
    assert len(chosen) == len(agreement) == 2 and all(len(a) == len(rhos) for a in agreement)
    for seed, rho in enumerate(chosen):
        assert agreement[seed][0] == pytest.approx(-1, abs=1e-3), "ρ = 0 is x: the original prompt reproduces its x0"
        assert rho == rhos[pick_strength(rhos, agreement[seed])], (rho, agreement[seed])
        assert (auto[seed] - every[rhos.index(rho) * 2 + seed]).abs().max() < 1e-4, "the pick is finished as the sweep finishes it"


@pytest.mark.parametrize("change,message", [
    ("no target", "connect the target prompt"),
    ("not a sweep", "does not come from AVI Integrate"),
    ("no rho 0", "measures each ρ against ρ = 0"),
    ("latent space", "edit of noisy latents"),
])
def test_auto_refuses_what_it_cannot_judge(host, digits_ckpt, change, message):
    p = auto_prompt(digits_ckpt, steps=10)  # refused before finishing
    if change == "no target":
        del p["auto"]["inputs"]["target"]
    elif change == "no rho 0":
        p["integrate"]["inputs"]["rho_list"] = "0.5, 1, 2"
    elif change == "not a sweep":
        p["auto"]["inputs"]["latent"] = ["capture_x", 0]
    else:
        for side in ("svd_x", "svd_z"):
            p[side]["inputs"]["space"] = "latent"
    with pytest.raises(Exception, match=message):
        host.run(p, outputs=["auto"])
