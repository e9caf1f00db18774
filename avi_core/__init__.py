"""The paper's method in pure torch: channel-wise latent SVD, Attribute Vector Integration (Algorithm 1),
Φ and its losses, the trainer, inference, latent conventions and Grassmann distances.

Importable on its own (no ComfyUI): `from avi_core import decompose, train_phi, integrate, ...`.
All latents given to these functions are VP-normalised ([B, C, H, W], unit variance per step).
"""
from .attribute_vectors import Z_VECTOR_MODES, attribute_vectors, fidelity_distances, reverse_order
from .conventions import MODEL_KINDS, StepChoice, from_vp, step_for_timestep_fraction, to_vp, vp_scale
from .geodesic import grassmann_distance, principal_angles, subspace_distance
from .inference import S_INF_MODES, integrate
from .losses import LossWeights, avi_loss
from .phi import PHI_PRESETS, SingularValuePredictor, build_phi
from .phi_file import FORMAT_VERSION, AttributePhi, PhiInfo, load_phi, save_phi
from .svd import LatentSVD, canonical_signs, decompose, recompose, scale_singular_value, singular_values
from .trainer import TrainingCancelled, TrainResult, TrainSettings, train_phi
from .training_data import CapturedPairs, resample_pairs, samples_per_pair

__all__ = [
    "AttributePhi", "CapturedPairs", "FORMAT_VERSION", "LatentSVD", "LossWeights", "MODEL_KINDS", "PHI_PRESETS",
    "PhiInfo", "S_INF_MODES", "SingularValuePredictor", "StepChoice", "TrainResult", "TrainSettings",
    "TrainingCancelled", "Z_VECTOR_MODES", "attribute_vectors", "avi_loss", "build_phi", "canonical_signs",
    "decompose", "fidelity_distances", "from_vp", "grassmann_distance", "integrate", "load_phi",
    "principal_angles", "recompose", "resample_pairs", "reverse_order", "samples_per_pair", "save_phi",
    "scale_singular_value",
    "singular_values", "step_for_timestep_fraction", "subspace_distance", "to_vp", "train_phi", "vp_scale",
]
