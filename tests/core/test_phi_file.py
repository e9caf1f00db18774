"""Φ files: round trip, metadata checks, refusal of the wrong latent, atomic and non-overwriting writes."""
import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from avi_core import AttributePhi, PhiInfo, build_phi, integrate, load_phi, save_phi
from avi_core.phi_file import info_to_metadata


def attribute(h=8, w=8, hidden=16, c=4, **info):
    fields = dict(channels=c, height=h, width=w, k=min(h, w) // 2, hidden=hidden, timestep_x=801.0, timestep_z=501.0,
                  training={"epochs": 5}, losses={"total": 1.5}, note="a photo of a male person → young")
    fields.update(info)
    return AttributePhi(build_phi(h, w, hidden, seed=3), PhiInfo(**fields))


def test_round_trip_gives_identical_outputs(tmp_path):
    original = attribute()
    path = save_phi(str(tmp_path / "young.safetensors"), original)
    loaded = load_phi(path)
    assert loaded.info == original.info
    x, z = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    assert torch.equal(integrate(original.phi, x, z, rho=[0.5, 1.0]), integrate(loaded.phi, x, z, rho=[0.5, 1.0]))
    assert os.listdir(tmp_path) == ["young.safetensors"], "no temporary file is left behind"


def test_metadata_is_readable_by_other_tools(tmp_path):
    path = save_phi(str(tmp_path / "a.safetensors"), attribute())
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["avi.format_version"]) == 1
    assert json.loads(meta["avi.note"]) == "a photo of a male person → young"
    assert json.loads(meta["avi.height"]) == 8


def test_never_overwrites_silently(tmp_path):
    path = str(tmp_path / "a.safetensors")
    save_phi(path, attribute(hidden=16))
    before = open(path, "rb").read()
    with pytest.raises(FileExistsError, match="already exists"):
        save_phi(path, attribute(hidden=32))
    assert open(path, "rb").read() == before
    save_phi(path, attribute(hidden=32), overwrite=True)
    assert load_phi(path).info.hidden == 32
    assert sorted(os.listdir(tmp_path)) == ["a.safetensors"]


def test_failed_write_leaves_nothing(tmp_path):
    broken = attribute()
    broken.info = PhiInfo(4, 8, 8, 4, 16, note=b"not text")
    with pytest.raises(ValueError, match="note must be text"):
        save_phi(str(tmp_path / "b.safetensors"), broken)
    assert os.listdir(tmp_path) == []


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    import safetensors.torch as st

    def interrupted(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(st, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_phi(str(tmp_path / "c.safetensors"), attribute())
    assert os.listdir(tmp_path) == []


def test_check_fits_names_both_shapes():
    a = attribute(h=64, w=64, hidden=8)
    a.check_fits((1, 4, 64, 64))
    with pytest.raises(ValueError, match=r"trained for 4×64×64 \(C×H×W\) latents \(512×512 px.*got a 4×96×96 latent \(768×768 px\)"):
        a.check_fits((1, 4, 96, 96))
    with pytest.raises(ValueError, match=r"\(eps model, 4 channels\); got unnamed latents \(unknown model, 16 channels\)"):
        a.check_fits((2, 16, 64, 64))
    with pytest.raises(ValueError, match=r"\(eps model, 4 channels\); got unnamed latents \(v model, 4 channels\)"):
        a.check_fits((1, 4, 64, 64), model_kind="v")
    # Another family is named before the size: a 16-channel SD3 Φ on a 4-channel SD1.5-format latent of another size.
    sd3 = attribute(h=64, w=64, hidden=8, c=16, model_kind="flow", latent_format="SD3")
    with pytest.raises(ValueError, match=r"trained on SD3 latents \(flow model, 16 channels\); got SD15 latents \(eps model, 4 "
                                         r"channels\)\. A Φ belongs to the model family it was trained with"):
        sd3.check_fits((1, 4, 96, 96), model_kind="eps", latent_format="SD15")


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda m, t: m.pop("avi.k"), "metadata field avi.k is missing"),
        (lambda m, t: m.update({"avi.k": "8"}), "k = 8 does not fit N = 8"),
        (lambda m, t: m.update({"avi.hidden": "\"wide\""}), "hidden must be a positive integer; got str 'wide'"),
        (lambda m, t: m.update({"avi.z_vectors": "\"middle\""}), "z_vectors must be one of"),
        (lambda m, t: m.update({"avi.model_kind": "\"edm\""}), "model_kind must be one of"),
        (lambda m, t: m.update({"avi.space": "\"pixels\""}), "space must be one of"),
        (lambda m, t: m.update({"avi.format_version": "99"}), "format version 99 is newer"),
        (lambda m, t: m.update({"avi.training": "{oops"}), "avi.training is not valid JSON"),
        (lambda m, t: m.clear(), "is not an AVI Φ file"),
        (lambda m, t: t.pop("head_s.bias"), r"missing \['head_s.bias'\]"),
        (lambda m, t: t.update({"head_s.bias": torch.zeros(3)}), "wrong shape"),
        (lambda m, t: t.update({"head_s.bias": torch.full((8,), float("nan"))}), "not finite"),
        (lambda m, t: m.update({"avi.height": "16"}), "weights do not match a Φ for 4×16×8"),
    ],
)
def test_load_refuses_damaged_files(tmp_path, edit, fragment):
    a = attribute(h=8, w=8, hidden=16)
    path = save_phi(str(tmp_path / "a.safetensors"), a)
    tensors, meta = load_file(path), info_to_metadata(a.info)
    edit(meta, tensors)
    save_file(tensors, path, metadata=meta)
    with pytest.raises(ValueError, match=fragment):
        load_phi(path)


def test_load_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_phi(str(tmp_path / "missing.safetensors"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match=f"cannot read AVI Φ file {junk}"):
        load_phi(str(junk))
    with pytest.raises(ValueError, match="attribute must be an AttributePhi"):
        save_phi(str(tmp_path / "x.safetensors"), build_phi(8, 8, 8))


def tampered(tmp_path, meta_updates=(), tensors=None, name="t.safetensors"):
    """A Φ file for 8×8 latents, hidden 16, with metadata fields replaced and/or other tensors."""
    a = attribute(h=8, w=8, hidden=16)
    meta = info_to_metadata(a.info) | dict(meta_updates)
    path = str(tmp_path / name)
    save_file(tensors if tensors is not None else {k: v.contiguous() for k, v in a.phi.state_dict().items()}, path, metadata=meta)
    return path


def test_metadata_claiming_a_huge_phi_is_refused_before_anything_is_allocated(tmp_path):
    import psutil

    rss = psutil.Process().memory_info().rss
    # 256×256 with hidden 4096 would be 1.2 GB of weights: refused by comparing the header's shapes first.
    path = tampered(tmp_path, {"avi.height": "256", "avi.width": "256", "avi.k": "128", "avi.hidden": "4096"})
    with pytest.raises(ValueError, match=r"weights do not match a Φ for 4×256×256 \(C×H×W\) with hidden = 4096"):
        load_phi(path)
    assert psutil.Process().memory_info().rss - rss < 64 * 2**20, "loading allocated far more than the file's size"
    for field, value, limit in (("hidden", 100000, 16384), ("height", 4096, 512), ("channels", 1000, 64)):
        with pytest.raises(ValueError, match=f"{field} = {value} is above the limit of {limit}"):
            load_phi(tampered(tmp_path, {f"avi.{field}": str(value)}))
    with pytest.raises(ValueError, match=r"has 4,848,665,600 parameters, above the limit of 1,073,741,824"):
        load_phi(tampered(tmp_path, {"avi.height": "512", "avi.width": "512", "avi.k": "256", "avi.hidden": "16384"}))
    with pytest.raises(ValueError, match=r"avi.hidden holds a number too long to read \(5000 characters\)"):
        load_phi(tampered(tmp_path, {"avi.hidden": "9" * 5000}))
    assert psutil.Process().memory_info().rss - rss < 64 * 2**20


def test_header_tensors_must_be_exactly_phis(tmp_path):
    weights = {k: v.contiguous() for k, v in attribute().phi.state_dict().items()}
    with pytest.raises(ValueError, match=r"unexpected \['junk'\]"):
        load_phi(tampered(tmp_path, tensors=weights | {"junk": torch.zeros(1000)}))
    as_int = weights | {"head_s.bias": torch.zeros(8, dtype=torch.int64)}
    with pytest.raises(ValueError, match=r"weights \['head_s.bias'\] are not finite floating-point values \(dtype must be one of"):
        load_phi(tampered(tmp_path, tensors=as_int))
    halves = {k: v.half() for k, v in weights.items()}
    assert load_phi(tampered(tmp_path, tensors=halves)).phi.head_s.bias.dtype == torch.float32, "float16 files load as float32"
    for value in ("NaN", "1e9", "-1"):
        with pytest.raises(ValueError, match="timestep_x must be a timestep from 0 to 1000"):
            load_phi(tampered(tmp_path, {"avi.timestep_x": value}))


def test_long_names_fail_with_the_limit_and_the_temporary_name_is_short(tmp_path):
    import avi_core.phi_file as pf

    fits = "a" * (255 - len(".safetensors"))
    path = save_phi(str(tmp_path / f"{fits}.safetensors"), attribute())
    assert os.path.basename(path) == f"{fits}.safetensors" and os.listdir(tmp_path) == [f"{fits}.safetensors"]
    with pytest.raises(ValueError, match=r"is 256 bytes long; file names hold at most 255 bytes \(UTF-8\), so choose a name at least 1 bytes"):
        save_phi(str(tmp_path / f"{fits}a.safetensors"), attribute())
    assert len(pf.TEMP_PREFIX + "12345678" + pf.TEMP_SUFFIX) < len("a.safetensors") + 10


def test_a_path_beyond_path_max_is_named(tmp_path):
    deep = os.path.join(str(tmp_path), *(["d" * 200] * 21), "x.safetensors")
    with pytest.raises(ValueError, match=r"bytes long; paths hold at most 4095 bytes"):
        save_phi(deep, attribute())
    assert os.listdir(tmp_path) == [], "nothing is created before the path is checked"


def test_space_is_recorded_and_files_without_it_read_as_latent(tmp_path):
    x0 = attribute(space="x0")
    assert load_phi(save_phi(str(tmp_path / "x0.safetensors"), x0)).info.space == "x0"
    x0.check_space("x0")
    with pytest.raises(ValueError, match="trained on SVDs of the 'x0' space; got SVDs of the 'latent' space"):
        x0.check_space("latent")
    old = attribute()  # written before the field existed: no avi.space in its metadata
    path = save_phi(str(tmp_path / "old.safetensors"), old)
    tensors, meta = load_file(path), info_to_metadata(old.info)
    meta.pop("avi.space")
    save_file(tensors, path, metadata=meta)
    assert load_phi(path).info.space == "latent"


def test_model_family_is_recorded_and_refused_across_families_of_one_latent_format(tmp_path):
    # SD1.5 and SD2 share the SD15 latent format, the eps kind and 4 channels: only the family tells them apart.
    sd2 = attribute(latent_format="SD15", model_family="SD20")
    assert load_phi(save_phi(str(tmp_path / "sd2.safetensors"), sd2)).info.model_family == "SD20"
    sd2.check_fits((1, 4, 8, 8), "eps", "SD15", "SD20")
    sd2.check_fits((1, 4, 8, 8), "eps", "SD15", "")  # a capture that could not tell its family: format and kind decide
    with pytest.raises(ValueError, match=r"trained on SD15 latents \(SD20 eps model, 4 channels\); got SD15 latents "
                                         r"\(SD15 eps model, 4 channels\)\. A Φ belongs to the model family"):
        sd2.check_fits((1, 4, 8, 8), "eps", "SD15", "SD15")
    with pytest.raises(ValueError, match="model_family must be text; got int 3"):
        PhiInfo(**{**sd2.info.__dict__, "model_family": 3}).check()
    meta = info_to_metadata(sd2.info)
    meta.pop("avi.model_family")  # a file written before the field existed
    path = str(tmp_path / "old.safetensors")
    save_file(load_file(str(tmp_path / "sd2.safetensors")), path, metadata=meta)
    old = load_phi(path)
    assert old.info.model_family == ""
    old.check_fits((1, 4, 8, 8), "eps", "SD15", "SD15")  # the old reading: format and kind only
