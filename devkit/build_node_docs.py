"""Write the nodes' help pages (web/docs/<node id>.md) from docs/nodes.md.

The frontend's node library and the node's "?" button fetch a custom node's help from
/extensions/<pack folder>/docs/<node id>/<locale>.md, then /extensions/<pack folder>/docs/<node id>.md
(NodeHelpService of comfyui-frontend-package 1.32.9 and 1.49.6); ComfyUI serves /extensions/<pack folder>/
from the pack's WEB_DIRECTORY (./web). Each page is the docs/nodes.md section that names the node's id in its
heading (one section can document several nodes); its relative links point at the repository's pages.
Usage: python devkit/build_node_docs.py [OUT_DIR]   (default: web/docs/)
"""
import os
import posixpath
import re
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODES_DOC = os.path.join(REPO_ROOT, "docs", "nodes.md")
DOCS_DIR = os.path.join(REPO_ROOT, "web", "docs")
REPOSITORY = "https://github.com/avi-latent/avi-latent-svd"  # pyproject.toml [project.urls] Repository
NODE_ID = re.compile(r"`(AVI[A-Za-z]+)`")


def node_sections(doc: str) -> list:
    """(heading, body) of each "## ..." section of docs/nodes.md whose heading names node ids."""
    sections = []
    for chunk in doc.split("\n## ")[1:]:
        heading, _, body = chunk.partition("\n")
        if NODE_ID.search(heading):
            sections.append((heading.strip(), body.strip()))
    return sections


def absolute(link: str) -> str:
    """A link of docs/nodes.md as the repository's page: README.md is its front page, every other file its blob."""
    if re.match(r"[a-z]+:", link):
        return link
    path, _, anchor = link.partition("#")
    path = posixpath.normpath(posixpath.join("docs", path or "nodes.md"))
    page = REPOSITORY if path == "README.md" else f"{REPOSITORY}/blob/main/{path}"
    return page + (f"#{anchor}" if anchor else "")


def page(heading: str, body: str) -> str:
    """One help page: the section with its relative links made absolute."""
    body = re.sub(r"\]\(([^)\s]+)\)", lambda m: f"]({absolute(m.group(1))})", body)
    return f"# {heading}\n\n{body}\n\nMore: {REPOSITORY}/blob/main/docs/nodes.md\n"


def build(doc: str) -> dict:
    """{node id: markdown page} for every node docs/nodes.md documents."""
    pages = {}
    for heading, body in node_sections(doc):
        for node_id in NODE_ID.findall(heading):
            pages[node_id] = page(heading, body)
    return pages


def main(out_dir: str = DOCS_DIR) -> None:
    with open(NODES_DOC, encoding="utf-8") as f:
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
