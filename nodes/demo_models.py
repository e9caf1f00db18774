"""The pack's demo models: tiny checkpoints in <pack>/demo_models that the digits_* and people_* templates run on.

At load the pack adds demo_models/ to ComfyUI's checkpoints folders and each demo model's config
class to comfy.supported_models.models, so the stock Load Checkpoint lists the files and detects
them in any ComfyUI, with nothing to download. The files and classes are named "avi_demo" /
"AVIDemo". A class matches only its own tiny UNet (64 channels, 64-wide text conditioning; real
SD models are 320 wide and condition on 768 to 2048) and is appended after every stock class, so
it never shadows a real model.

Adding a demo model: its checkpoint in demo_models/, its config class here (a subclass of
AVIDemoTinySD2 with its own UNet widths in unet_config), and one DemoModel entry in DEMO_MODELS.

This file imports only ComfyUI and torch (no relative imports): the devkit loads it by path to
train the models and to read the list.
"""
import os
from typing import NamedTuple

import torch

import comfy.model_base
import comfy.supported_models
import comfy.supported_models_base
from comfy.text_encoders import sd2_clip

DEMO_FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo_models")

# Overrides of comfy/text_encoders/sd2_clip_config.json: SD2's text model, shrunk. The vocabulary
# stays full size because the real SD2 tokenizer emits ids up to 49407. Three layers, not two:
# SD2 reads the penultimate layer (-2) and comfy/sd1_clip.py asserts abs(layer_idx) < num_layers.
TINY_CONTEXT_DIM = 64
TINY_CLIP_CONFIG = {
    "hidden_size": TINY_CONTEXT_DIM,
    "intermediate_size": 128,
    "num_attention_heads": 2,
    "num_hidden_layers": 3,
    "projection_dim": TINY_CONTEXT_DIM,
    "vocab_size": 49408,
    "max_position_embeddings": 77,
}
# A demo checkpoint stores only the trained rows of the token table (the rest are zero) and their ids.
TOKEN_TABLE = "cond_stage_model.model.token_embedding.weight"
TOKEN_ROWS = "cond_stage_model.model.token_embedding.avi_rows"


class TinySD2ClipModel(sd2_clip.SD2ClipModel):
    """SD2's CLIP-H text encoder wrapper (penultimate layer) with the tiny configuration."""

    def __init__(self, device="cpu", dtype=None, model_options={}, **kwargs):
        # SDClipModel applies "<model_name>_model_config" entries over the json configuration.
        model_options = {**model_options, "clip_h_model_config": dict(TINY_CLIP_CONFIG)}
        super().__init__(device=device, dtype=dtype, model_options=model_options, **kwargs)


class AVIDemoTinySD2(comfy.supported_models.SD20):
    """SD2 family with a tiny UNet and the tiny SD2 text encoder; the base of the demo models."""

    avi_demo_model = True
    unet_config = {
        "context_dim": TINY_CONTEXT_DIM,
        "use_linear_in_transformer": True,
        "adm_in_channels": None,
        "use_temporal_attention": False,
    }

    def model_type(self, state_dict, prefix=""):
        """V_PREDICTION when the checkpoint carries ComfyUI's "v_pred" marker key, else EPS."""
        # SD20 probes output_blocks.11, which a tiny UNet does not have.
        if "v_pred" in state_dict:
            return comfy.model_base.ModelType.V_PREDICTION
        return comfy.model_base.ModelType.EPS

    def clip_target(self, state_dict={}):
        """The real SD2 tokenizer with the tiny SD2 text encoder."""
        return comfy.supported_models_base.ClipTarget(sd2_clip.SD2Tokenizer, TinySD2ClipModel)

    def process_clip_state_dict_for_saving(self, state_dict):
        """SD2's layout, with the token table cut to its non-zero rows and their token ids."""
        sd = super().process_clip_state_dict_for_saving(state_dict)
        table = sd[TOKEN_TABLE]
        rows = torch.nonzero(table.abs().sum(1)).flatten()
        sd[TOKEN_TABLE], sd[TOKEN_ROWS] = table[rows].contiguous(), rows.to(torch.int32)
        return sd

    def process_clip_state_dict(self, state_dict):
        """The full SD2 token table (zeros where no row is stored), then SD2's own conversion."""
        if TOKEN_ROWS in state_dict:
            rows = state_dict.pop(TOKEN_ROWS).long()
            stored = state_dict[TOKEN_TABLE]
            full = torch.zeros(TINY_CLIP_CONFIG["vocab_size"], stored.shape[1], dtype=stored.dtype)
            full[rows] = stored
            state_dict[TOKEN_TABLE] = full
        return super().process_clip_state_dict(state_dict)


class AVIDemoTinyDigitsSD2(AVIDemoTinySD2):
    """The trained tiny digits model: SD2 family, eps prediction, 128 px images (16x16 latents)."""

    unet_config = {**AVIDemoTinySD2.unet_config, "model_channels": 64, "channel_mult": [1, 1]}
    # SD20 forces 64-channel heads; the tiny UNet has two 32-channel heads.
    unet_extra_config = {"num_heads": -1, "num_head_channels": 32, "attn_precision": torch.float32}


class AVIDemoTinyPeopleSD2(AVIDemoTinySD2):
    """The trained tiny people model: SD2 family, eps prediction, 128 px images (16x16 latents), 128 channels at 8x8."""

    unet_config = {**AVIDemoTinySD2.unet_config, "model_channels": 64, "channel_mult": [1, 2]}
    unet_extra_config = AVIDemoTinyDigitsSD2.unet_extra_config


class DemoModel(NamedTuple):
    file: str  # in DEMO_FOLDER, as Load Checkpoint lists it
    config: type  # the config class that detects it


DEMO_MODELS = (
    DemoModel("avi_demo_tiny_digits_sd2.safetensors", AVIDemoTinyDigitsSD2),
    DemoModel("avi_demo_tiny_people_sd2.safetensors", AVIDemoTinyPeopleSD2),
)


def register_configs(models: list, configs) -> None:
    """Append the demo config classes to a supported-models list, replacing earlier registrations (idempotent)."""
    # Matched by marker and name: this file may be loaded twice (the pack, and the devkit by path).
    names = {c.__name__ for c in configs}
    models[:] = [m for m in models if not (getattr(m, "avi_demo_model", False) and m.__name__ in names)]
    models.extend(configs)


def register() -> None:
    """Make the demo checkpoints loadable by the stock Load Checkpoint: their folder and their config classes."""
    import folder_paths
    if os.path.isdir(DEMO_FOLDER):
        folder_paths.add_model_folder_path("checkpoints", DEMO_FOLDER)
    register_configs(comfy.supported_models.models, [m.config for m in DEMO_MODELS])
