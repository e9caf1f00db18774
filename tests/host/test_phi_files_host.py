"""Save AVI Φ / Load AVI Φ in a real graph: byte-identical reuse, refusal of another size, naming rules."""
import os

import pytest
import torch

from tests.host.avi_prompts import edit_prompt


def avi_files(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_save_load_integrate_is_byte_identical_and_reusable(host, tiny_ckpt, extra_model_dirs):
    import folder_paths

    p = edit_prompt(tiny_ckpt["eps"], rho_list="0.5, 1")
    p["save"] = {"class_type": "AVISavePhi", "inputs": {"phi": ["train", 0], "filename": "roundtrip", "if_exists": "overwrite",
                                                         "note": "a photo of a male person → a photo of a young male person"}}
    first = host.run(p)
    saved_as = first.output("save")
    assert saved_as == "roundtrip.safetensors"
    folder = folder_paths.get_folder_paths("avi")[0]
    assert folder == extra_model_dirs["avi"] and "roundtrip.safetensors" in avi_files(folder)
    assert not [f for f in avi_files(folder) if f.endswith(".partial")]
    assert "roundtrip.safetensors" in folder_paths.get_filename_list("avi")

    reuse = edit_prompt(tiny_ckpt["eps"], rho_list="0.5, 1", phi_from=["load", 0])
    reuse["load"] = {"class_type": "AVILoadPhi", "inputs": {"phi_name": "roundtrip.safetensors"}}
    second = host.run(reuse)
    assert torch.equal(first.output("integrate")["samples"], second.output("integrate")["samples"])
    assert torch.equal(first.output("decode"), second.output("decode"))
    info_text = second.output("load", 1)
    assert "4×16×16 (C×H×W) SD20 eps latents" in info_text and "young male person" in info_text

    new_seed = edit_prompt(tiny_ckpt["eps"], seed=12345, phi_from=["load", 0])
    new_seed["load"] = reuse["load"]
    reused = host.run(new_seed)
    assert reused.output("decode").shape == (1, 128, 128, 3), "a saved attribute applies to new seeds without training"
    assert "train" not in reused.executed


def test_a_phi_for_another_size_is_refused_naming_both(host, tiny_ckpt):
    from devkit.comfy_host import ExecutionFailed

    p = edit_prompt(tiny_ckpt["eps"], size=64)
    p["save"] = {"class_type": "AVISavePhi", "inputs": {"phi": ["train", 0], "filename": "small", "if_exists": "overwrite"}}
    host.run(p)
    other = edit_prompt(tiny_ckpt["eps"], size=96, phi_from=["load", 0])
    other["load"] = {"class_type": "AVILoadPhi", "inputs": {"phi_name": "small.safetensors"}}
    with pytest.raises(ExecutionFailed, match=r"trained for 4×8×8 \(C×H×W\) latents \(64×64 px.*got a 4×12×12 latent \(96×96 px\)"):
        host.run(other)


def test_save_never_overwrites_silently(host, tiny_ckpt):
    import folder_paths
    from devkit.comfy_host import ExecutionFailed

    folder = folder_paths.get_folder_paths("avi")[0]
    p = edit_prompt(tiny_ckpt["eps"], size=64)
    p["save"] = {"class_type": "AVISavePhi", "inputs": {"phi": ["train", 0], "filename": "faces/numbered", "if_exists": "add number"}}
    names = [host.run(p, outputs=["save"]).output("save") for _ in range(3)]
    assert names == ["faces/numbered.safetensors", "faces/numbered_00001.safetensors", "faces/numbered_00002.safetensors"]
    before = open(os.path.join(folder, "faces", "numbered.safetensors"), "rb").read()
    p["save"]["inputs"]["if_exists"] = "error"
    with pytest.raises(ExecutionFailed, match="numbered.safetensors already exists"):
        host.run(p, outputs=["save"])
    assert open(os.path.join(folder, "faces", "numbered.safetensors"), "rb").read() == before
    for bad in ("../escape", "/abs/path", "", "a/../../b", "con:name"):
        p["save"]["inputs"].update(filename=bad, if_exists="add number")
        with pytest.raises(ExecutionFailed, match="filename must"):
            host.run(p, outputs=["save"])
    assert not os.path.exists(os.path.join(os.path.dirname(folder), "escape.safetensors"))


def test_load_refuses_a_damaged_file(host, tiny_ckpt):
    import folder_paths
    from devkit.comfy_host import ExecutionFailed

    folder = folder_paths.get_folder_paths("avi")[0]
    with open(os.path.join(folder, "damaged.safetensors"), "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    p = {"load": {"class_type": "AVILoadPhi", "inputs": {"phi_name": "damaged.safetensors"}}}
    with pytest.raises(ExecutionFailed, match="cannot read AVI Φ file .*damaged.safetensors"):
        host.run(p, outputs=["load"])
    os.remove(os.path.join(folder, "damaged.safetensors"))
