"""The two settings of the method, in one place: the pack's measured defaults and the paper's literal ones.

tx, tz: timestep fractions of the captures; space: what SVD Decompose decomposes (conventions.SPACES);
k: singular pairs kept from x (0 = N/2); z_vectors, s_inf, rho: Algorithm 1's options at Train and Integrate.
bench/bench_quality.py measures both side by side; the nodes' widgets default to PACK.
"""
PACK = dict(tx=0.6, tz=0.5, space="x0", k=1, z_vectors="aligned", s_inf="Sx→S", rho=1.25)
PAPER = dict(tx=0.8, tz=0.5, space="latent", k=0, z_vectors="tail", s_inf="S", rho=1.0)
