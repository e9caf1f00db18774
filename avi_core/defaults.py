"""The two settings of the method, in one place: the pack's measured defaults and the paper's literal ones.

tx, tz: timestep fractions of the captures; space: what SVD Decompose decomposes (conventions.SPACES);
k: singular pairs kept from x (0 = N/2); z_vectors, s_inf, rho: Algorithm 1's options at Train and Integrate;
finish: the prompt Inject Latent finishes the edited latent with ("target": the target prompt connected to its
`target` input for every remaining step; "original": the paper's, the original prompt only).
bench/bench_edits.py measures both side by side on every model; the nodes' widgets and the shipped workflows follow PACK.
"""
PACK = dict(tx=0.6, tz=0.5, space="x0", k=1, z_vectors="aligned", s_inf="Sx→S", rho=1.0, finish="target")
# Two attributes stacked (Integrate on Integrate's y_pred) finish with the target prompt that names both attributes, at
# the strength the stacked edit was measured with (bench/bench_real.py, two attributes: both reached in 0.81 of generated
# and 0.94 of real digits with that finish, 0.44 and 0.69 with the original prompt's).
STACKED = dict(PACK, rho=1.25)
# z enters the pack's edit only through its x0 prediction at tz·T, which a coarser run of the target prompt (same sampler
# and scheduler, same start) reaches for fewer model evaluations: of 50 `ddim_uniform` steps, z's t = 501 is step 24
# (25 evaluations), of 20 it is step 9 (10). Measured level with z on the full run over every model and kind
# (docs/benchmarks.md, Edits over models and kinds), so the shipped workflows capture z on Z_STEPS where x's run is
# FULL_STEPS `ddim_uniform` steps from noise (devkit/build_workflows.z_sampling).
FULL_STEPS, Z_STEPS = 50, 20
PAPER = dict(tx=0.8, tz=0.5, space="latent", k=0, z_vectors="tail", s_inf="S", rho=1.0, finish="original")
