"""Checks on an (x, z) pair of captures shared by Train AVI Φ and AVI Integrate: one model, one size, one seed, one schedule."""
from ..avi_core.conventions import families_differ
from .types import CapturedSVD


def check_same_source(x: CapturedSVD, z: CapturedSVD) -> None:
    """x and z have one latent shape, come from one model and (when both were captured) share their seed."""
    if x.shape != z.shape:
        if x.shape[1:] == z.shape[1:]:  # e.g. a ρ sweep's y_pred decomposed as the x of a second attribute
            raise ValueError(f"x holds {x.shape[0]} latent(s) and z {z.shape[0]}; x and z must be batches of one size: to stack a "
                             "second attribute, decompose a y_pred of one ρ (empty rho_list)")
        raise ValueError(f"x and z must have the same latent shape; got x {x.shape} and z {z.shape}")
    if x.space != z.space:
        raise ValueError(f"x and z must be decomposed in the same space; got x in {x.space!r} and z in {z.space!r} "
                         "(SVD Decompose's space)")
    xi, zi = x.info, z.info
    if xi.model_kind != zi.model_kind or xi.latent_format != zi.latent_format:
        raise ValueError(f"x and z must come from the same model; got x from a {xi.model_kind} {xi.latent_format} model "
                         f"and z from a {zi.model_kind} {zi.latent_format} model")
    if families_differ(xi.model_family, zi.model_family):
        raise ValueError(f"x and z must come from one model class; got x from {xi.model_family} and z from {zi.model_family}")
    if xi.start != zi.start:
        raise ValueError(f"x and z must start from the same noise (AVI pairs share it); got x from "
                         f"{xi.start or f'seed {xi.seed}'} and z from {zi.start or f'seed {zi.seed}'}")
    if xi.step >= 0 and zi.step >= 0 and not xi.start and xi.seed != zi.seed:
        raise ValueError(f"x and z must be captured with the same seed (AVI pairs share their noise); got seeds {xi.seed} and {zi.seed}")


def asked(info) -> str:
    """The point on the trajectory a capture was asked for: its timestep fraction or its explicit step."""
    return f"timestep_fraction {info.fraction:g}" if info.fraction is not None else f"step {info.step}"


def same_step_message(x: CapturedSVD, z: CapturedSVD) -> str:
    """Why x and z on one step is refused, and the fix that can help: more steps only when the asked points differ."""
    xi, zi = x.info, z.info
    where = f"step {xi.step} of {xi.steps}, t = {xi.timestep:g}"
    later = "later in denoising (e.g. x at 0.8·T, z at 0.5·T)"
    if x is z or (x.shape == z.shape and bool((x.latent == z.latent).all())):
        return (f"x and z are the same capture ({where}): connect the original prompt's capture to x, and to z a capture of "
                f"the target prompt {later}; more steps cannot separate them")
    asked_x, asked_z = (asked(i) for i in (xi, zi))
    if asked_x == asked_z:
        return f"x and z were both asked for {asked_x} ({where}): capture z {later}"
    return (f"x and z landed on the same step ({xi.step} of {xi.steps}, t = {xi.timestep:g}): with {xi.steps} {xi.scheduler} "
            "steps both fractions map to it. Use more steps or fractions further apart")


def check_one_trajectory(x: CapturedSVD, z: CapturedSVD) -> None:
    """x and z come from runs of one sampler and scheduler, and z lies later in denoising than x (Tz < Tx).

    z may take fewer steps than x: only its x0 prediction at Tz enters the edit, and a coarser run of the target prompt
    reaches it for a fraction of the evaluations (docs/benchmarks.md, what an edit costs)."""
    xi, zi = x.info, z.info
    if xi.step >= 0 and zi.step >= 0:
        for name, a, b in (("sampler", xi.sampler, zi.sampler), ("scheduler", xi.scheduler, zi.scheduler)):
            if a != b:
                raise ValueError(f"x and z must be captured with the same {name} (their trajectories share one schedule); "
                                 f"got {a!r} for x and {b!r} for z")
        if xi.step == zi.step and xi.steps == zi.steps:
            raise ValueError(same_step_message(x, z))
    if zi.timestep >= xi.timestep:
        raise ValueError(f"z must be captured later in denoising than x (Tz < Tx, e.g. x at 0.8·T and z at 0.5·T); got x at "
                         f"t = {xi.timestep:g} ≈ {xi.reached_fraction:.2f}·T and z at t = {zi.timestep:g} ≈ {zi.reached_fraction:.2f}·T. "
                         "Swap the two captures' timestep fractions")
