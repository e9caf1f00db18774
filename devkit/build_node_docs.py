"""Write the nodes' help pages (web/docs/<node id>.md) from the README's "Nodes" section.

The frontend's node library and the node's "?" button fetch a custom node's help from
/extensions/<pack folder>/docs/<node id>/<locale>.md, then /extensions/<pack folder>/docs/<node id>.md
(NodeHelpService of comfyui-frontend-package 1.32.9 and 1.49.6); ComfyUI serves /extensions/<pack folder>/
from the pack's WEB_DIRECTORY (./web). Each page is the README section that names the node's id in its
heading (one section can document several nodes); links into the README point at the repository's page.
Usage: python devkit/build_node_docs.py [OUT_DIR]   (default: web/docs/)
"""
import os
import re
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO_ROOT, "README.md")
DOCS_DIR = os.path.join(REPO_ROOT, "web", "docs")
REPOSITORY = "https://github.com/avi-latent/avi-latent-svd"  # pyproject.toml [project.urls] Repository
NODE_ID = re.compile(r"`(AVI[A-Za-z]+)`")


def node_sections(readme: str) -> list:
    """(heading, body) of each "### ..." section of "## Nodes" whose heading names node ids."""
    nodes_part = readme.split("\n## Nodes\n", 1)[1].split("\n## ", 1)[0]
    sections = []
    for chunk in nodes_part.split("\n### ")[1:]:
        heading, _, body = chunk.partition("\n")
        if NODE_ID.search(heading):
            sections.append((heading.strip(), body.strip()))
    return sections


def page(heading: str, body: str) -> str:
    """One help page: the section with README-relative links made absolute."""
    body = re.sub(r"\]\(#", f"]({REPOSITORY}#", body)
    body = re.sub(r"\]\((docs/[^)]+)\)", rf"]({REPOSITORY}/blob/main/\1)", body)
    return f"# {heading}\n\n{body}\n\nMore: {REPOSITORY}#nodes\n"


def build(readme: str) -> dict:
    """{node id: markdown page} for every node the README documents."""
    pages = {}
    for heading, body in node_sections(readme):
        for node_id in NODE_ID.findall(heading):
            pages[node_id] = page(heading, body)
    return pages


def main(out_dir: str = DOCS_DIR) -> None:
    with open(README, encoding="utf-8") as f:
        pages = build(f.read())
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        if name.endswith(".md") and name[:-3] not in pages:
            os.remove(os.path.join(out_dir, name))
    for node_id, text in sorted(pages.items()):
        with open(os.path.join(out_dir, f"{node_id}.md"), "w", encoding="utf-8") as f:
            f.write(text)
        print(os.path.join(out_dir, f"{node_id}.md"))


if __name__ == "__main__":
    main(*sys.argv[1:])
