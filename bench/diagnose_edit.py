"""Where the AVI edit is lost: y_pred against x at the injection step and along the remaining steps.

Usage: python bench/diagnose_edit.py [--cases-per-edit 2] [--out docs/edit_diagnosis.png]

For the benchmark's cases at the paper's settings (Tx 0.8, Tz 0.5, k = N/2, Φ 512 wide) and each ρ:
- ‖y_pred − x‖ / ‖x‖ (VP latents) and the share of y_pred's energy ΣS² in x's top-k block;
- the attribute statistic of the model's x0 prediction right after the injection and of the final
  image, for the original-prompt finish and for the target-prompt finish;
- how much of the edit survives: ‖x0_t(y_pred) − x0_t(x)‖ at every remaining step t relative to
  the first, and ‖final(y_pred) − final(x)‖ / ‖y_pred − x‖ in model space.
Writes a figure and a JSON next to it; prints the means.
"""
import argparse
import json
import os
import sys
from dataclasses import replace

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from bench import digit_metrics as M  # noqa: E402
from bench.sweep_edit import PAPER, Runner, load_cases  # noqa: E402

RHOS = (0.0, 0.5, 1.0)


def attribute_of(runner, case, latent_raw):
    attribute = runner.prompts(case)[0]
    image = runner.lab.decode(latent_raw)
    return float(M.attribute_value(runner.judge.measure(image, torch.tensor([case["digit"]])), attribute)[0])


def diagnose_case(runner, i, case) -> dict:
    lab = runner.lab
    _, original, target = runner.prompts(case)
    sx, sz, x_vp, z_vp, _, _ = runner.captured(case, PAPER)
    x_model = lab.from_vp(x_vp, sx)
    out = {"rho": {}}
    ref_logs = {}
    for finish, prompts in (("original", [original]), ("target", [target])):
        log = []
        final = lab.finish(x_model, sx, prompts, x0_log=log)
        ref_logs[finish] = (torch.cat(log), final)
    out["x_final_attribute"] = attribute_of(runner, case, ref_logs["original"][1])
    tt = lab.trajectory(target, case["seed"])
    out["z_final_attribute"] = attribute_of(runner, case, tt.final)
    for rho in RHOS:
        s = replace(PAPER, rho=rho)
        _, y_model = runner.y_pred(i, case, s)
        y_vp = lab.vp(y_model, sx)
        phi = runner.phi(i, case, s)
        from avi_core.phi import predict
        with torch.no_grad():
            S, _ = predict(phi, x_vp)
        energy = S.square()
        row = {"move": float((y_vp - x_vp).norm() / x_vp.norm()),
               "top_k_share": float(energy[..., :PAPER.k].sum() / energy.sum()),
               "target_move": float((lab.vp(tt.x[sx:sx + 1], sx) - x_vp).norm() / x_vp.norm())}
        for finish, prompts in (("original", [original]), ("target", [target])):
            log = []
            final = lab.finish(y_model, sx, prompts, x0_log=log)
            x0s, ref_x0s, ref_final = torch.cat(log), *ref_logs[finish]
            gap = (x0s - ref_x0s).flatten(1).norm(dim=1)
            row[finish] = {"x0_attribute_after_injection": attribute_of(runner, case, lab.to_raw(x0s[:1])),
                           "final_attribute": attribute_of(runner, case, final),
                           "x0_gap_along_steps": (gap / gap[0].clamp(min=1e-8)).tolist(),
                           "survives": float(lab.model.model.process_latent_in(final - ref_final).norm() / (y_model - x_model).norm())}
        ref = ref_logs["original"][0]
        row["x0_attribute_after_injection_unedited"] = attribute_of(runner, case, lab.to_raw(ref[:1]))
        out["rho"][rho] = row
    return out


def plot(results: list, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for rho in RHOS:
        for finish, style in (("original", "-"), ("target", "--")):
            curves = torch.tensor([r["rho"][rho][finish]["x0_gap_along_steps"] for r in results]).mean(0)
            axes[0].plot(curves, style, label=f"ρ={rho:g}, finish {finish}")
    axes[0].set_xlabel("steps after the injection")
    axes[0].set_ylabel("‖x0(y_pred) − x0(x)‖ / first")
    axes[0].set_title("edit left in the model's x0 prediction", fontsize=9)
    axes[0].legend(fontsize=7)
    means = lambda key, finish: [sum(r["rho"][rho][finish][key] for r in results) / len(results) for rho in RHOS]  # noqa: E731
    for finish, style in (("original", "o-"), ("target", "s--")):
        axes[1].plot(RHOS, means("x0_attribute_after_injection", finish), style, label=f"x0 after injection ({finish})")
        axes[1].plot(RHOS, means("final_attribute", finish), style, alpha=0.5, label=f"final image ({finish} finish)")
    x_att = sum(r["x_final_attribute"] for r in results) / len(results)
    z_att = sum(r["z_final_attribute"] for r in results) / len(results)
    axes[1].axhline(x_att, color="grey", lw=0.8)
    axes[1].axhline(z_att, color="k", lw=0.8, ls=":")
    axes[1].set_xlabel("ρ")
    axes[1].set_ylabel("attribute statistic (signed toward the target)")
    axes[1].set_title("attribute: original (grey), target from scratch (dotted)", fontsize=9)
    axes[1].legend(fontsize=6)
    move = [sum(r["rho"][rho]["move"] for r in results) / len(results) for rho in RHOS]
    survive = [sum(r["rho"][rho]["original"]["survives"] for r in results) / len(results) for rho in RHOS]
    share = [sum(r["rho"][rho]["top_k_share"] for r in results) / len(results) for rho in RHOS]
    axes[2].plot(RHOS, move, "o-", label="‖y_pred − x‖ / ‖x‖")
    axes[2].plot(RHOS, survive, "s-", label="final difference / injected difference")
    axes[2].plot(RHOS, share, "^-", label="y_pred energy in x's top-k block")
    axes[2].axhline(sum(r["rho"][1.0]["target_move"] for r in results) / len(results), color="k", ls=":", lw=0.8,
                    label="‖x_target − x‖ / ‖x‖ at Tx")
    axes[2].set_xlabel("ρ")
    axes[2].set_title("size of the edit and what survives", fontsize=9)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases-per-edit", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "docs", "edit_diagnosis.png"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from bench.edit_lab import boot_lab
    runner = Runner(boot_lab(), M.Judge.load(), load_cases(args.cases_per_edit))
    results = [diagnose_case(runner, i, case) | {"case": case} for i, case in enumerate(runner.cases)]
    plot(results, args.out)
    with open(os.path.splitext(args.out)[0] + ".json", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    for rho in RHOS:
        rows = [r["rho"][rho] for r in results]
        m = lambda f: sum(f(r) for r in rows) / len(rows)  # noqa: E731
        print(f"ρ={rho:g}: move {m(lambda r: r['move']):.3f} (target's own {m(lambda r: r['target_move']):.3f}), "
              f"top-k share {m(lambda r: r['top_k_share']):.3f}, survives {m(lambda r: r['original']['survives']):.3f}; "
              f"attribute x0 after injection {m(lambda r: r['original']['x0_attribute_after_injection']):.3f} "
              f"(unedited {m(lambda r: r['x0_attribute_after_injection_unedited']):.3f}), final {m(lambda r: r['original']['final_attribute']):.3f}, "
              f"with target finish {m(lambda r: r['target']['final_attribute']):.3f}")
    print(f"original final {sum(r['x_final_attribute'] for r in results) / len(results):.3f}, "
          f"target from scratch {sum(r['z_final_attribute'] for r in results) / len(results):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
