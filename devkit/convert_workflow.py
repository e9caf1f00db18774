"""Convert a UI-format ComfyUI workflow into the API-format prompt the frontend (1.32.9) would queue.

    python devkit/convert_workflow.py workflow.json --object-info object_info.json -o prompt.json
    python devkit/convert_workflow.py workflow.json --object-info http://127.0.0.1:8188 -o prompt.json

The node definitions come from a saved GET /object_info answer or from a running server. With
--check the workflow is checked first (devkit/workflow_check.py) and nothing is written if it has
problems. The prompt can be queued with POST /prompt {"prompt": ...}.
"""
import argparse
import json
import os
import sys
import urllib.request

if __package__ in (None, ""):  # run as a script: make `devkit` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from devkit.workflow_api import WorkflowError, ui_to_api  # noqa: E402
from devkit.workflow_check import check_workflow  # noqa: E402


def load_object_info(source: str, timeout: float = 30.0) -> dict:
    """Node definitions from a JSON file or a server URL (its /object_info)."""
    if source.startswith(("http://", "https://")):
        url = source.rstrip("/")
        url = url if url.endswith("/object_info") else url + "/object_info"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    with open(source, encoding="utf-8") as f:
        return json.load(f)


def main(argv=None) -> int:
    """Command line entry point; the exit status (1: problems found or conversion refused)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workflow", help="UI-format workflow JSON (as the frontend saves it)")
    parser.add_argument("--object-info", required=True, help="object_info JSON file, or a ComfyUI server URL")
    parser.add_argument("-o", "--output", default="-", help="where to write the API prompt (default: stdout)")
    parser.add_argument("--check", action="store_true", help="check the workflow first; write nothing on problems")
    args = parser.parse_args(argv)
    with open(args.workflow, encoding="utf-8") as f:
        workflow = json.load(f)
    object_info = load_object_info(args.object_info)
    if args.check:
        problems = check_workflow(workflow, object_info)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            return 1
    try:
        prompt = ui_to_api(workflow, object_info)
    except WorkflowError as e:
        print(f"{args.workflow}: {e}", file=sys.stderr)
        return 1
    text = json.dumps(prompt, indent=2, ensure_ascii=False) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
