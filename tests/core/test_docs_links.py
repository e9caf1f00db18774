"""The README and docs/*.md link to each other and to the repository's files: every relative link resolves to a file
that exists and, where it names an anchor, to a heading or `<a id>` of that file (GitHub's heading ids)."""
import os
import re

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = ["README.md", "CHANGELOG.md"] + [f"docs/{n}" for n in sorted(os.listdir(os.path.join(REPO_ROOT, "docs"))) if n.endswith(".md")]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FRONT_PAGE_LINES = 200


def read(path: str) -> str:
    with open(os.path.join(REPO_ROOT, path), encoding="utf-8") as f:
        return f.read()


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"(?ms)^```.*?^```", "", text)


def heading_ids(text: str) -> set:
    """GitHub's ids: lower case, punctuation but - and _ dropped, spaces to -, repeats numbered; and <a id>s."""
    ids, seen = set(), {}
    for heading in re.findall(r"(?m)^#{1,6} (.+)$", prose(text)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        ids.add(slug if n == 0 else f"{slug}-{n}")
    return ids | set(re.findall(r'<a id="([^"]+)"', text))


def broken_links(page: str, text: str) -> list:
    """What of text's relative links, read as the file page of the repository, resolves to nothing."""
    broken = []
    for target in LINK.findall(prose(text)):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(os.path.join(REPO_ROOT, resolved)):
            broken.append(f"{target}: no file {resolved}")
        elif anchor and resolved.endswith(".md") and anchor not in heading_ids(read(resolved)):
            broken.append(f"{target}: no heading #{anchor} in {resolved}")
    return broken


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_resolves(page):
    assert broken_links(page, read(page)) == [], page


def test_the_front_page_is_short_and_opens_with_install_a_template_and_the_edit_graph():
    text = read("README.md")
    assert text.count("\n") <= FRONT_PAGE_LINES
    sections = re.findall(r"(?m)^## (.+)$", text)
    assert sections[:3] == ["Install", "Open a template", "The edit graph"], sections
    assert "make test" in text, "CI runs the README's test command"


def test_a_broken_link_is_found():
    """The checker itself: a missing file, a missing heading and a link into another page are told apart."""
    text = ("[a](nodes.md#capture-latent-at-step-avicapturelatent) [b](no_such_page.md) [c](../README.md#no-such-heading) "
            "[d](#the-edit-graph) [e](../bench/reference/real_results.json) [f](https://example.com/x#y)\n```\n[g](nowhere.md)\n```")
    assert broken_links("docs/page.md", text) == ["no_such_page.md: no file docs/no_such_page.md",
                                                  "../README.md#no-such-heading: no heading #no-such-heading in README.md",
                                                  "#the-edit-graph: no file docs/page.md"]
