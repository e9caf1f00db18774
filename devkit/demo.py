"""Run one of the pack's workflows headless in the embedded ComfyUI and copy its images to output/.

Usage: python devkit/demo.py [--workflow digits_bold] [--checkpoint PATH] [--out output] [--base .demo]

The workflow file is queued as the ComfyUI frontend would queue it (devkit/workflow_api.py);
only the checkpoint name changes. Without --checkpoint (or AVI_CHECKPOINT) it runs digits_bold
on the pack's own trained tiny digits model (demo_models/, which the pack offers to Load Checkpoint), a real edit in about a minute on a
CPU; with one it runs sd21_young. An SD2.1 workflow without a checkpoint runs on a tiny random
SD2 model instead: the graph runs end to end, the images are noise. `make run` calls this.
"""
import argparse
import json
import os
import pathlib
import shutil
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from devkit import comfy_host, workflow_api  # noqa: E402
from devkit.write_tiny_checkpoint import is_current  # noqa: E402

TINY_NAME = "avi-demo-tiny-sd2.safetensors"
DIGITS_MODEL = os.path.join(REPO_ROOT, "demo_models", "avi_demo_tiny_digits_sd2.safetensors")
DIGITS_NAME = os.path.basename(DIGITS_MODEL)
# Workflows on a model the pack ships, by name prefix: Load Checkpoint lists it already (nodes/demo_models.py).
SHIPPED_MODELS = {"digits_": DIGITS_NAME, "people_": "avi_demo_tiny_people_sd2.safetensors"}
INPUTS_DIR = os.path.join(REPO_ROOT, "example_workflows", "inputs")  # the example images Load Image opens in the *_real_image workflows


def example_inputs() -> dict:
    """{file name: path} of the images the workflows' Load Image nodes name: the pack's, and ComfyUI's own example.png."""
    images = {name: os.path.join(INPUTS_DIR, name) for name in sorted(os.listdir(INPUTS_DIR))}
    comfy_example = os.path.join(comfy_host.default_comfy_dir(), "input", "example.png")  # every ComfyUI ships it in input/
    if os.path.isfile(comfy_example):
        images["example.png"] = comfy_example
    return images


def example_input_bytes() -> dict:
    """{file name: contents} of example_inputs(), for a server's input folder (copies: an upload may replace a file)."""
    return {name: pathlib.Path(path).read_bytes() for name, path in example_inputs().items()}


def place_inputs(input_dir: str) -> None:
    """Copy the example images into input_dir (a copy: Load Image's upload may overwrite a file of that name)."""
    os.makedirs(input_dir, exist_ok=True)
    for name, path in example_inputs().items():
        shutil.copyfile(path, os.path.join(input_dir, name))


def parse_args(argv=None) -> argparse.Namespace:
    """Command line, with AVI_CHECKPOINT as the default checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflow", default=None,
                        help="a name in example_workflows/ (default: digits_bold, or sd21_young when a checkpoint is given)")
    parser.add_argument("--checkpoint", default=os.environ.get("AVI_CHECKPOINT") or None,
                        help="an SD2.1-base .safetensors/.ckpt (default: $AVI_CHECKPOINT, else a tiny random model)")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "output"), help="where the images are copied")
    parser.add_argument("--base", default=os.path.join(REPO_ROOT, ".demo"), help="ComfyUI base directory")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when CUDA is available")
    return parser.parse_args(argv)


def default_workflow(checkpoint) -> str:
    """digits_bold on the shipped digits model, sd21_young when the user gives an (SD2.1) checkpoint."""
    return "digits_bold" if checkpoint is None else "sd21_young"


def load_workflow(name: str) -> dict:
    """A shipped workflow by name, with a clear error listing the ones there are."""
    path = os.path.join(REPO_ROOT, "example_workflows", f"{name}.json")
    if not os.path.isfile(path):
        names = sorted(f[:-5] for f in os.listdir(os.path.join(REPO_ROOT, "example_workflows")) if f.endswith(".json"))
        raise SystemExit(f"no workflow {name!r}; the pack ships: {', '.join(names)}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def place_checkpoint(base: str, checkpoint, workflow: str) -> str:
    """The checkpoint's name for Load Checkpoint: the pack's digits model, or the user's or a fresh tiny random one linked
    into <base>/models/checkpoints."""
    folder = os.path.join(base, "models", "checkpoints")
    os.makedirs(folder, exist_ok=True)
    prefix = next((p for p in SHIPPED_MODELS if workflow.startswith(p)), None)
    if checkpoint is None and prefix:
        # The pack registers demo_models/ with Load Checkpoint (nodes/demo_models.py): nothing to place.
        print(f"No checkpoint given: using the pack's tiny {prefix.rstrip('_')} model (demo_models/{SHIPPED_MODELS[prefix]}).")
        return SHIPPED_MODELS[prefix]
    if checkpoint is None:
        from devkit import tiny_models
        path = os.path.join(folder, TINY_NAME)
        if not is_current(path):  # an older file may not fit the current tiny config
            tiny_models.write_tiny_checkpoint(path, "eps")
        print("No checkpoint given (--checkpoint or AVI_CHECKPOINT): using a tiny random SD2 model.\n"
              "The whole graph runs, but its images are noise. For real edits pass SD2.1 base 512:\n"
              "  AVI_CHECKPOINT=/path/to/v2-1_512-ema-pruned.safetensors make run")
        return TINY_NAME
    name = os.path.basename(checkpoint)
    link(checkpoint, os.path.join(folder, name))
    return name


def link(target: str, path: str) -> None:
    """path becomes a symbolic link to target (replacing an older link or file)."""
    if os.path.lexists(path):
        os.remove(path)
    os.symlink(target, path)


def with_checkpoint(prompt: dict, name: str) -> dict:
    """The prompt with every CheckpointLoaderSimple pointing at name."""
    loaders = [n for n in prompt.values() if n["class_type"] == "CheckpointLoaderSimple"]
    if not loaders:
        raise SystemExit("the workflow has no CheckpointLoaderSimple to point at the checkpoint")
    for node in loaders:
        node["inputs"]["ckpt_name"] = name
    return prompt


class ProgressPrinter:
    """Prints each node as it starts, its progress text, and sampler/training progress every 20 %."""

    def __init__(self, prompt: dict):
        self.titles = {k: v.get("_meta", {}).get("title", v["class_type"]) for k, v in prompt.items()}
        self.last = {}

    def message(self, event, data):
        if event == "executing" and data.get("node") is not None:
            print(f"  {self.titles.get(data['node'], data['node'])}", flush=True)
        elif event == "progress_text":
            print(f"      {data['text'].splitlines()[0]}", flush=True)

    def progress(self, value, total, node_id):
        tenth = int(10 * value / max(total, 1))
        key = node_id or ""
        if tenth != self.last.get(key) and (tenth % 2 == 0 or value == total):
            self.last[key] = tenth
            print(f"      {value}/{total}", flush=True)


def copy_images(result, out_dir: str, output_dir: str) -> list:
    """Copy every image the run saved (SaveImage, not previews) into out_dir; the new paths."""
    copied = []
    os.makedirs(out_dir, exist_ok=True)
    for ui in result.ui.get("outputs", {}).values():
        for image in ui.get("images", []):
            if image.get("type") != "output":
                continue
            src = os.path.join(output_dir, image.get("subfolder", ""), image["filename"])
            dst = os.path.join(out_dir, os.path.basename(src))
            shutil.copyfile(src, dst)
            copied.append(dst)
    return copied


def main(argv=None) -> int:
    args = parse_args(argv)
    args.workflow = args.workflow or default_workflow(args.checkpoint)
    workflow = load_workflow(args.workflow)
    if args.checkpoint is not None:
        args.checkpoint = os.path.abspath(args.checkpoint)
        if not os.path.isfile(args.checkpoint):
            raise SystemExit(f"checkpoint not found: {args.checkpoint} (give an SD2.1-base .safetensors or .ckpt file)")
    base = os.path.abspath(args.base)
    import torch
    cpu = args.cpu or not torch.cuda.is_available()
    print(f"Booting ComfyUI ({'CPU' if cpu else 'CUDA'}) in {base} ...", flush=True)
    host = comfy_host.boot(base, pack_dir=REPO_ROOT, cpu=cpu)
    name = place_checkpoint(base, args.checkpoint, args.workflow)
    import folder_paths
    place_inputs(folder_paths.get_input_directory())
    prompt = with_checkpoint(workflow_api.ui_to_api(workflow, host.object_info()), name)
    printer = ProgressPrinter(prompt)
    host.server.listeners.append(printer.message)
    print(f"Running example_workflows/{args.workflow}.json with {name}:", flush=True)
    start = time.perf_counter()
    with host.progress_events(on_event=printer.progress):
        result = host.run(prompt)
    images = copy_images(result, os.path.abspath(args.out), folder_paths.get_output_directory())
    print(f"Done in {time.perf_counter() - start:.1f} s. Images:")
    for path in images:
        print(f"  {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted: no images were copied (a Φ is only ever saved whole).", file=sys.stderr)
        sys.exit(130)
