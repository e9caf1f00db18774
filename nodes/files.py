"""Save AVI Φ / Load AVI Φ: learned attributes as .safetensors files in models/avi, shared like LoRAs."""
import os
import re

import folder_paths
from comfy_api.v0_0_2 import io

from ..avi_core import load_phi, save_phi
from .integrate import require_phi
from .schema import schema
from .types import AVIPhi
from .ui import CATEGORY, show_text
from .widgets import AVINode

FOLDER = "avi"
EXT = ".safetensors"
IF_EXISTS = ["add number", "error", "overwrite"]
# Device names Windows reserves in any folder, any case, also before an extension ("nul.txt" is NUL): the set
# Python 3.13's ntpath.isreserved checks. Workflows travel between systems, and many ComfyUI users run Windows.
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                    *(f"{port}{n}" for port in ("COM", "LPT") for n in "123456789\u00b9\u00b2\u00b3")}


def windows_problem(part: str):
    """Why one part of a file name cannot be a name on Windows (a device name, a trailing dot or space), or None."""
    if part.endswith((".", " ")):
        return f"{part!r} ends with a dot or a space, which Windows drops from file names"
    device = part.split(".", 1)[0].rstrip(" ").upper()
    if device in WINDOWS_RESERVED:
        what = "a device name" if part.upper() == device else f"the device name {device} with an extension"
        return f"{part!r} is {what} there (CON, PRN, AUX, NUL, COM1-9 and LPT1-9, in any case and with any extension)"
    return None


def target_path(folder: str, name: str) -> str:
    """folder/name.safetensors, refusing names that would leave the folder or cannot be file names."""
    clean = (name or "").strip().replace("\\", "/")
    if clean.lower().endswith(EXT):
        clean = clean[: -len(EXT)]
    parts = clean.split("/")
    if not clean or clean.startswith("/") or any(p in ("", ".", "..") for p in parts) or re.search(r'[<>:"|?*\x00-\x1f]', clean):
        raise ValueError(f"filename must be a plain name such as 'young' or 'faces/young' inside models/{FOLDER}; got {name!r}")
    problem = next((p for p in map(windows_problem, parts) if p), None)
    if problem:
        raise ValueError(f"filename {name!r} would not work on Windows: {problem}; choose another name")
    path = os.path.abspath(os.path.join(folder, *parts) + EXT)
    if os.path.commonpath([path, os.path.abspath(folder)]) != os.path.abspath(folder):
        raise ValueError(f"filename must stay inside models/{FOLDER}; got {name!r}")
    # A link inside the folder (models/avi/link -> /elsewhere) must not carry the file out of it.
    real, real_folder = os.path.realpath(path), os.path.realpath(folder)
    if os.path.commonpath([real, real_folder]) != real_folder:
        raise ValueError(f"filename must stay inside models/{FOLDER}; {name!r} leads through a link to {real}")
    return path


def numbered(path: str) -> str:
    """path itself if free, else the first free path_00001, path_00002, ... (as ComfyUI numbers saved files)."""
    if not os.path.exists(path):
        return path
    stem = path[: -len(EXT)]
    for i in range(1, 100000):
        candidate = f"{stem}_{i:05d}{EXT}"
        if not os.path.exists(candidate):
            return candidate
    raise ValueError(f"no free file name left for {path}")


def describe_phi(info) -> str:
    """Short text about a learned attribute for the canvas."""
    total = info.losses.get("total")
    loss = f", final loss {total:.4g}" if isinstance(total, (int, float)) else ""
    note = f"\n{info.note}" if info.note else ""
    family = f"{info.model_family} " if info.model_family else ""
    return f"Φ for {info.shape_text()} {family}{info.model_kind} latents, k {info.k}, hidden {info.hidden}{loss}{note}"


class SaveAVIPhi(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVISavePhi",
            display_name="Save AVI Φ",
            category=CATEGORY,
            description="Saves a learned attribute to models/avi/<filename>.safetensors (weights + metadata, written atomically) "
                        "so Load AVI Φ can reuse it on new seeds without retraining.",
            inputs=[
                AVIPhi.Input("phi", tooltip="The learned attribute from Train AVI Φ."),
                io.String.Input("filename", default="attribute", tooltip="File name inside models/avi, without extension; 'faces/young' makes a subfolder."),
                io.Combo.Input("if_exists", options=IF_EXISTS, default="add number",
                               tooltip="When the file exists: add a number (young_00001), stop with an error, or overwrite it."),
                io.String.Input("note", default="", optional=True, tooltip="Text stored in the file, e.g. the two prompts; empty keeps Φ's own note."),
            ],
            outputs=[io.String.Output("saved_as", display_name="saved_as", tooltip="The file name as Load AVI Φ lists it.")],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, phi, filename, if_exists, note="") -> io.NodeOutput:
        from dataclasses import replace

        phi = require_phi(phi)
        folder = folder_paths.get_folder_paths(FOLDER)[0]
        path = target_path(folder, filename)
        if if_exists == "add number":
            path = numbered(path)
        elif if_exists == "error" and os.path.exists(path):
            raise ValueError(f"{path} already exists; choose another filename or set if_exists to 'add number' or 'overwrite'")
        attribute = type(phi)(phi.phi, replace(phi.info, note=note)) if note else phi
        save_phi(path, attribute, overwrite=if_exists == "overwrite")
        saved_as = os.path.relpath(path, folder).replace(os.sep, "/")
        show_text(cls.hidden.unique_id, f"saved models/{FOLDER}/{saved_as}")
        return io.NodeOutput(saved_as, ui={"text": [saved_as]})


class LoadAVIPhi(AVINode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="AVILoadPhi",
            display_name="Load AVI Φ",
            category=CATEGORY,
            description="Loads a learned attribute from models/avi (or any folder extra_model_paths.yaml gives for `avi`); "
                        "every metadata field is checked, and AVI Integrate refuses latents of another size.",
            inputs=[io.Combo.Input("phi_name", options=folder_paths.get_filename_list(FOLDER),
                                   tooltip="A .safetensors file saved by Save AVI Φ.")],
            outputs=[
                AVIPhi.Output("phi", display_name="phi", tooltip="The learned attribute."),
                io.String.Output("info", display_name="info", tooltip="What the file was trained for, its losses and note."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def fingerprint_inputs(cls, phi_name):
        """Reload when the file changes on disk (same name, new training)."""
        path = folder_paths.get_full_path(FOLDER, phi_name)
        return (path, os.path.getmtime(path), os.path.getsize(path)) if path and os.path.exists(path) else phi_name

    @classmethod
    def execute(cls, phi_name) -> io.NodeOutput:
        path = folder_paths.get_full_path(FOLDER, phi_name)
        if path is None:
            raise ValueError(f"no AVI Φ file named {phi_name!r} in {folder_paths.get_folder_paths(FOLDER)}")
        attribute = load_phi(path)
        text = describe_phi(attribute.info)
        show_text(cls.hidden.unique_id, text)
        return io.NodeOutput(attribute, text)
