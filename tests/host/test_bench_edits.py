"""bench/bench_edits.py on one case per kind: every method runs and is scored, and the lab's edits meet the switch where
they must (finishing under the target prompt from an unedited x is the stock prompt switch at x's step)."""
import json
import os
from dataclasses import replace

import pytest
import torch

from bench import bench_edits as E
from bench.edit_lab import BASE, Editor, Lab

REFERENCE = os.path.join(E.REPO_ROOT, "bench", "reference", "edits")


@pytest.fixture(scope="module")
def digits_lab(host, digits_ckpt):
    return Lab(E.CHECKPOINTS["digits"])


def test_unedited_x_finished_under_the_target_is_the_prompt_switch(digits_lab):
    editor = Editor(digits_lab)
    case = {"original": "a handwritten 3", "target": "a bold handwritten 3", "seed": 0}
    switches = editor.baseline_images(case, (0.6, 0.8))
    plain = editor.image(0, case, replace(BASE, rho=0.0, finish="original"))
    assert (plain - switches["original"]).abs().max() < 1e-3, "ρ = 0, original finish: x itself"
    assert BASE.finish == "target", "the pack's default finishes with the target prompt"
    for tx, z_from in ((0.6, "scratch"), (0.8, "branch")):
        s = replace(BASE, tx=tx, dtau=0.1, rho=0.0, z_from=z_from)
        assert (editor.image(0, case, s) - switches[f"switch at {tx:g}T"]).abs().max() < 1e-3, (tx, z_from)
    edited = editor.image(0, case, BASE)
    assert (edited - switches["switch at 0.6T"]).abs().mean() > 1e-3, "ρ > 0 moves away from the switch"
    earlier = editor.baseline_images(case, (0.8,))["switch at 0.8T"]
    assert (editor.image(0, case, replace(BASE, rho=0.0, renoise=0.2)) - earlier).abs().max() < 1e-3, \
        "an unedited x joining the run at 0.8T is the switch there"
    assert (editor.image(0, case, replace(BASE, renoise=0.2)) - earlier).abs().mean() > 1e-3


def test_a_branched_z_costs_only_the_steps_between_x_and_z(digits_lab):
    sx, sz = digits_lab.step_at(BASE.tx), digits_lab.step_at(BASE.tx - BASE.dtau)
    assert E.evaluations(digits_lab, BASE) == (sx + 1) + (sz + 1) + (E.STEPS - sx)
    assert E.evaluations(digits_lab, replace(BASE, z_from="branch")) == (sx + 1) + (sz - sx + 1) + (E.STEPS - sx)
    assert E.evaluations(digits_lab, replace(BASE, z_from="branch")) <= 1.2 * E.STEPS
    joins = digits_lab.step_at(BASE.tx + 0.1)
    assert E.evaluations(digits_lab, replace(BASE, renoise=0.1)) == E.evaluations(digits_lab, BASE) + (sx - joins) > 76


def test_the_cost_benchmark_counts_an_edit_as_the_edit_benchmark_does(digits_lab):
    from bench import bench_cost
    for z_from in ("scratch", "branch"):
        counted = bench_cost.edit_evaluations(digits_lab.model, BASE.tx, BASE.tx - BASE.dtau, branch=z_from == "branch")
        assert counted == E.evaluations(digits_lab, replace(BASE, z_from=z_from)), z_from
    assert bench_cost.edit_evaluations(digits_lab.model, 0.6, 0.5, branch=False) == 76


def test_z_on_a_run_of_fewer_steps_costs_that_runs_steps_to_the_same_timestep(digits_lab):
    from bench import bench_cost
    sz50, sz10 = digits_lab.step_at(0.5), digits_lab.step_at(0.5, 10)
    timesteps10 = digits_lab.model.get_model_object("model_sampling").timestep(digits_lab.schedule(10)[:-1])
    assert (sz50, sz10) == (24, 4) and float(timesteps10[sz10]) == pytest.approx(float(digits_lab.timesteps[sz50]))
    coarse = replace(BASE, z_steps=10)
    assert E.evaluations(digits_lab, coarse) == E.evaluations(digits_lab, BASE) - (sz50 - sz10) == 56 <= 1.25 * E.STEPS
    assert bench_cost.edit_evaluations(digits_lab.model, BASE.tx, 0.5, branch=False, z_steps=10) == 56
    assert bench_cost.edit_evaluations(digits_lab.model, BASE.tx, 0.5, branch=False, z_steps=20) == 61 \
        == E.evaluations(digits_lab, replace(BASE, z_steps=20)) <= 1.25 * E.STEPS


def test_a_phi_of_another_seed_is_the_phi_that_seeds_own_captures_train(digits_lab):
    """The reuse setting edits a case's own x and z with the Φ trained on seed + phi_seed, as a saved Φ is reused."""
    editor = Editor(digits_lab)
    case = {"original": "a handwritten 3", "target": "a bold handwritten 3", "seed": 0}
    reused = editor.phi(0, case, replace(BASE, phi_seed=1))
    own_of_next = editor.phi(1, dict(case, seed=1), BASE)
    from avi_core.phi import predict
    x = editor.captured(case, BASE)[2]
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(predict(reused, x), predict(own_of_next, x)))
        assert not torch.equal(predict(editor.phi(0, case, BASE), x)[0], predict(reused, x)[0]), "the case's own Φ differs"


def test_a_stored_run_extended_with_a_setting_equal_to_the_default_scores_it_as_stored(digits_lab, monkeypatch):
    """extend_edits draws a stored case's original again and scores new settings against it: the default's own setting
    under another name gives the stored default's scores (the benchmark is deterministic)."""
    from bench import extend_edits
    stored = E.read_results([os.path.join(REFERENCE, "results_digits.json")])["stroke"]
    results = {"stroke": dict(stored, rows=stored["rows"][:1])}
    monkeypatch.setitem(E.VARIANTS, "z 50 steps", (replace(BASE, z_steps=E.STEPS), (0.0, 1.0)))
    monkeypatch.setitem(E.VARIANTS, "z 20 steps", (replace(BASE, z_steps=20), (0.0, 1.0)))
    added = extend_edits.extend("digits", results, ["z 50 steps", "z 20 steps"], lab=digits_lab, auto=True)["stroke"]
    new, old = added["cases"][0]["scores"], results["stroke"]["rows"][0]["scores"]
    for key in ("success", "leak"):
        assert new["z 50 steps ρ=1"][key] == old["AVI ρ=1"][key], key
    assert new["z 50 steps ρ=1"]["identity"] == pytest.approx(old["AVI ρ=1"]["identity"], abs=1e-4)
    assert new["z 20 steps ρ=1"]["identity"] != pytest.approx(old["AVI ρ=1"]["identity"], abs=1e-6), "another z, another edit"
    assert new["z 20 steps ρ=0"]["identity"] == pytest.approx(old["AVI ρ=0"]["identity"], abs=1e-4), "ρ = 0: z unused"
    # the automatic strength along each curve, from the agreements kept per case (ρ = 0 is the reference, 1 the one pick)
    case = added["cases"][0]
    assert case["auto_rho"] == {"z 50 steps": 1.0, "z 20 steps": 1.0} and len(case["agreement"]["z 20 steps"]) == 2
    assert case["agreement"]["z 20 steps"][0] == pytest.approx(case["agreement"]["z 50 steps"][0], abs=1e-5), "ρ = 0: z unused"
    assert new["z 20 steps auto"] == new["z 20 steps ρ=1"]
    assert added["table"]["z 20 steps ρ=1"]["evaluations"] == 61 and added["table"]["z 20 steps auto"]["evaluations"] == 61 + 4
    assert set(added["table"]) == {f"z {n} steps {m}" for n in (50, 20) for m in ("ρ=0", "ρ=1", "auto")}
    moved = dict(stored["rows"][0], seed=stored["rows"][0]["seed"] + 100)
    with pytest.raises(ValueError, match="made by another version"):
        extend_edits.case_pair(next(k for k in extend_edits.K.KINDS if k.name == "stroke"), moved)


def test_a_file_of_added_methods_merges_into_its_run_and_a_paired_difference_reads_both():
    from bench import frontier_gap
    runs = [os.path.join(REFERENCE, f) for f in ("results_digits.json", "results_digits_zsteps.json")]
    results = E.read_results(runs)
    assert {"AVI ρ=1", "z 20 steps ρ=1", "z 10 steps ρ=1.5"} <= set(results["stroke"]["table"])
    assert all({"AVI ρ=1", "z 20 steps ρ=1"} <= set(r["scores"]) for r in results["stroke"]["rows"])
    same = frontier_gap.paired_differences(results, "AVI ρ=1", "AVI ρ=1", 50)
    assert all(v == (0.0, 0.0, 0.0) for v in same.values()) and len(same) == 4
    z20 = frontier_gap.paired_differences(results, "z 20 steps ρ=1", "AVI ρ=1", 200)
    assert z20["stroke"][0] == pytest.approx(-0.054, abs=5e-4) and z20["mean over kinds"][0] == pytest.approx(-0.027, abs=5e-4)
    with pytest.raises(ValueError, match="already in an earlier file"):
        E.read_results(runs + runs[1:])
    # A file that repeats a measured method beside new ones merges where it scores it the same (a rerun), not otherwise.
    stroke = results["stroke"]

    def part(names: dict) -> dict:  # {name in the file: the measured method it carries}
        return {"table": {n: stroke["table"][m] for n, m in names.items()}, "seconds": 1.0,
                "rows": [{**{k: r[k] for k in ("original", "target", "seed")}, "scores": {n: r["scores"][m] for n, m in names.items()}}
                         for r in stroke["rows"]]}

    first, curve = {"z 20 steps ρ=1": "z 20 steps ρ=1"}, {"z 20 steps ρ=1": "z 20 steps ρ=1", "z 40 steps ρ=1": "z 10 steps ρ=1"}
    base = E.read_results(runs[:1])["stroke"]
    E.add_methods(base, part(first), "first")
    E.add_methods(base, part(curve), "the curve with the measured ρ")
    assert "z 40 steps ρ=1" in base["table"] and base["rows"][3]["scores"]["z 20 steps ρ=1"] == stroke["rows"][3]["scores"]["z 20 steps ρ=1"]
    with pytest.raises(ValueError, match="already in an earlier file"):
        E.add_methods(base, part(first), "nothing new")
    again, otherwise = E.read_results(runs[:1])["stroke"], part(curve)
    otherwise["rows"][3]["scores"]["z 20 steps ρ=1"] = dict(otherwise["rows"][3]["scores"]["z 20 steps ρ=1"], identity=1.0)
    E.add_methods(again, part(first), "first")
    with pytest.raises(ValueError, match="already in an earlier file"):
        E.add_methods(again, otherwise, "one case scored otherwise")


@pytest.mark.parametrize("model,kind", [("digits", "stroke"), ("people", "person → woman")])
def test_one_case_of_a_kind_runs_every_method_and_scores_it(host, request, model, kind, tmp_path):
    request.getfixturevalue(f"{model}_ckpt")  # the shipped model, as Load Checkpoint lists it
    results = E.run_model(model, 1, kinds=[kind])
    table = results[kind]["table"]
    assert set(E.method_names()) <= set(table)
    original = table["original"]
    assert original["success"] == 0 and original["identity"] == pytest.approx(0, abs=1e-4), "the case starts without its goal"
    assert table["AVI ρ=0"]["identity"] == pytest.approx(table["switch at 0.6T"]["identity"], abs=1e-3), "ρ = 0: the switch at x's step"
    assert E.AUTO in table and results[kind]["rows"][0]["auto_rho"] in E.AVI_METHODS["AVI"][1]
    assert table["target from scratch"]["success"] == 1, "the judge reads the target prompt's own image as the goal"
    assert table["switch at 0.9T"]["evaluations"] == E.STEPS and table["AVI ρ=1.25"]["evaluations"] > E.STEPS
    for method, row in table.items():
        assert 0 <= row["success"] <= 1 and row["identity"] > -1e-5 and 0 <= row["leak"] <= 1, (method, row)  # 1 − cosine: −1e-7 for equal features
        assert 0 <= row["sure_leak"] <= row["leak"], (method, row)
    E.write(str(tmp_path), model, results)
    assert (tmp_path / f"frontier_{model}.png").stat().st_size > 10_000 and (tmp_path / f"results_{model}.json").exists()
    again = E.read_results([str(tmp_path / f"results_{model}.json")])
    assert all(again[kind]["table"][m] == pytest.approx(t, nan_ok=True) for m, t in results[kind]["table"].items())
    assert len(again[kind]["rows"]) == 1
    with pytest.raises(ValueError, match="already"):
        E.read_results([str(tmp_path / f"results_{model}.json")] * 2)
    words = E.frontier_words(model, results)
    assert len(words) == 1 and kind in words[0]
    assert torch.is_tensor(results[kind]["rows"][0]["images"]["AVI ρ=1.25"])


def test_a_stored_run_is_read_with_todays_automatic_strength():
    """The 40-case → older run on the people model's stage 1 took ρ = 2 where the model read no ρ as the target's; read
    back, those cases take ρ = 1."""
    import math
    import os
    path = os.path.join(E.REPO_ROOT, "bench", "reference", "edits", "people_stage1",
                        "results_people_older.json")
    done = E.read_results([path])["→ older"]
    rhos = list(E.AVI_METHODS["AVI"][1])
    assert done["auto_moved"] == 24, "the picks the fallback to ρ = 1 moves"
    for r in done["rows"]:
        assert r["auto_rho"] == E.auto_rho(rhos, r["agreement"]) != 0
        assert r["scores"][E.AUTO] == r["scores"][f"AVI ρ={r['auto_rho']:g}"]
    row = done["table"][E.AUTO]
    assert row["success"] == pytest.approx(sum(r["scores"][E.AUTO]["success"] for r in done["rows"]) / 40)
    assert row["success"] >= done["table"]["AVI ρ=2"]["success"] + 0.2 and math.isnan(row["fd"]), "no features stored"


# (kind, stored file's label, case): on each the switch at x's step (ρ = 0) misses the target and the default reaches it;
# two of them the automatic strength takes past ρ = 1.
PEOPLE_PINS = (("person → man", "man", 7), ("→ older", "older", 1), ("hair colour", "hair", 19))


def test_the_default_edit_on_the_people_model_gives_its_benchmark_scores_and_automatic_strength(host, people_ckpt):
    """The shipped default (z on 20 steps, ρ = 1, the target's finish) on three of the people model's benchmark cases:
    every ρ of the curve scores as the committed run (results_people_z20_*.json), ρ = 1 reaches the attribute where
    ρ = 0 does not, and the automatic strength picks the ρ the run picked."""
    from bench import extend_edits
    lab = Lab(E.CHECKPOINTS["people"])
    for kind, label, index in PEOPLE_PINS:
        stored = E.read_results([os.path.join(REFERENCE, f"results_people_{label}.json")])[kind]
        added = extend_edits.extend("people", {kind: dict(stored, rows=stored["rows"][index:index + 1])}, ["z 20 steps"],
                                    lab=lab, auto=True)[kind]["cases"][0]
        with open(os.path.join(REFERENCE, f"results_people_z20_{label}.json"), encoding="utf-8") as f:
            measured = json.load(f)[kind]["cases"][index]
        assert (added["seed"], added["target"]) == (measured["seed"], measured["target"])
        for method, s in measured["scores"].items():
            assert (added["scores"][method]["success"], added["scores"][method]["leak"]) == (s["success"], s["leak"]), (kind, method)
            assert added["scores"][method]["identity"] == pytest.approx(s["identity"], abs=1e-4), (kind, method)
        assert not added["scores"]["z 20 steps ρ=0"]["success"] and added["scores"]["z 20 steps ρ=1"]["success"], kind
        assert added["auto_rho"] == measured["auto_rho"], kind
        assert added["agreement"]["z 20 steps"] == pytest.approx(measured["agreement"]["z 20 steps"], abs=1e-4), kind
