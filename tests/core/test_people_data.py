"""devkit/people.py: attributes from Unicode, captions, canvas layouts, and the committed held-out drawings."""
import torch

from devkit import people, people_sources


def test_attributes_come_from_code_points_and_cldr_names():
    a = people.attributes_of("1F469-1F3FD-200D-2695-FE0F", ":woman_health_worker_medium_skin_tone:")
    assert a == {"gender": "female", "age": "adult", "hair": "", "skin": "medium", "role": "health worker"}
    assert people.attributes_of("1F468-200D-1F9B0", ":man_red_hair:") == \
        {"gender": "male", "age": "adult", "hair": "red", "skin": "", "role": ""}
    assert people.attributes_of("1F475-1F3FF", ":old_woman_dark_skin_tone:")["age"] == "old"
    assert people.attributes_of("1F646", ":person_gesturing_OK:") == \
        {"gender": "neutral", "age": "adult", "hair": "", "skin": "", "role": "gesturing ok"}
    assert people.attributes_of("1F646-200D-2642-FE0F", ":man_gesturing_OK:")["gender"] == "male"
    assert people.attributes_of("1F934", ":prince:") == {"gender": "male", "age": "adult", "hair": "", "skin": "", "role": "with crown"}
    assert people.attributes_of("1F471-200D-2640-FE0F", ":woman_blond_hair:")["hair"] == "blond"
    assert people.attributes_of("1F9D1-200D-1F37C", ":person_feeding_baby:")["role"] == "feeding baby"
    assert people.attributes_of("1F9CF-200D-2642-FE0F", ":deaf_man:")["role"] == "deaf"


def test_descriptions_name_each_attribute_and_read_as_english():
    assert people.describe("adult", "female", "health worker", "red", "dark") == \
        "a woman health worker with red hair, dark skin tone"
    assert people.describe("old", "male") == "an old man"
    assert people.describe("adult", "neutral", "deaf", "bald") == "a deaf bald person"
    assert people.describe("child", "female") == "a girl"


def test_captions_drop_attribute_words_so_prompts_can_be_neutral():
    d = people.Drawing("1F469-1F3FD-200D-2695-FE0F", "noto", "", "female", "adult", "red", "dark", "health worker", False)
    gen = torch.Generator().manual_seed(0)
    seen = {people.caption(d, gen) for _ in range(400)}
    assert "a woman health worker with red hair, dark skin tone" in seen
    assert "a person health worker" in seen and "a person" in seen, "every attribute word is dropped sometimes"
    assert all(c in people.all_captions([d]) for c in seen), "the vocabulary covers every caption the data can make"
    old = people.Drawing("1F474", "noto", "", "male", "old", "", "", "", False)
    assert {people.caption(old, gen) for _ in range(100)} >= {"an old man", "a man", "a person", "an old person"}


def test_a_layout_places_the_drawing_on_its_background():
    sprite = torch.zeros(1, 4, people.SPRITE, people.SPRITE, dtype=torch.uint8)
    sprite[:, 0, 24:72, 24:72] = 255          # a red square, opaque
    sprite[:, 3, 24:72, 24:72] = 255
    image = people.compose(sprite, [people.Layout(0.8, 0.0, 0.0, "sky")])
    assert image.shape == (1, 3, 128, 128)
    assert torch.allclose(image[0, :, 2, 2], torch.tensor(people.BACKGROUNDS["sky"]), atol=1e-6)
    assert torch.allclose(image[0, :, 64, 64], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    moved = people.compose(sprite, [people.Layout(0.8, 10.0, 0.0, "sky")])
    assert torch.allclose(moved[0, :, 64, 74], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    assert moved[0, 0, 64, 40] < 0.8, "the square moved right by 10 px"


def test_the_committed_held_out_drawings_are_a_tenth_of_every_style():
    data = people_sources.held_out()
    assert data.sprites.shape[1:] == (4, people.SPRITE, people.SPRITE) and data.sprites.dtype == torch.uint8
    assert len(data.drawings) == data.sprites.shape[0] == 282
    assert all(d.held_out for d in data.drawings), "the split is a hash of style and code, recomputed on load"
    styles = [d.style for d in data.drawings]
    assert all(70 <= styles.count(s) <= 115 for s in people.STYLES), {s: styles.count(s) for s in people.STYLES}
    assert {d.gender for d in data.drawings} == set(people.GENDERS)
    assert len({d.skin for d in data.drawings}) == len(people.SKINS)
    images, idx, layouts = data.batch(8, torch.Generator().manual_seed(0), held=True)
    assert images.shape == (8, 3, 128, 128) and 0 <= images.min() and images.max() <= 1 and len(layouts) == 8


def test_group_weights_share_the_plain_persons_half_equally_by_group():
    data = people_sources.held_out()
    idx = data.indices(True)
    plain = torch.tensor([data.drawings[i].role in ("", "with beard") for i in idx.tolist()])
    before, after = data.weights(idx), data.group_weights(idx)
    assert abs(after.sum().item() - 1) < 1e-6
    assert abs(after[plain].sum().item() - before[plain].sum().item()) < 1e-6, "roles keep their half"
    assert torch.allclose(after[~plain], before[~plain])
    groups = {}
    for k, i in enumerate(idx.tolist()):
        d = data.drawings[i]
        if plain[k]:
            groups.setdefault((d.age, d.gender, d.hair), []).append(float(after[k]))
    shares = [sum(w) for w in groups.values()]
    assert len(groups) > 3 and max(shares) - min(shares) < 1e-6, "each (age, gender, hair) group draws as often"
    gen = torch.Generator().manual_seed(0)
    _, drawn, _ = data.batch(200, gen, held=True, by_group=True)
    assert all(data.drawings[i].held_out for i in drawn.tolist())
