"""The benchmark's judge of people images (bench/people_scorer.safetensors) on the committed held-out drawings.

Those drawings were never trained on; they come with the repository, so this needs no download. Bounds sit a little
below what `python devkit/people_scorer.py` measured on them (docs/models.md, The tiny people model).
"""
import torch

from bench import people_metrics as PM
from devkit import people, people_scorer, people_sources

# measured on these 512 (seed 1234): role 0.977, style 1.000, skin 1.000, gender 0.898, age 1.000, hair 0.986
# (on 1024, the scorer's metadata: role 0.981, style 1.000, skin 0.998, gender 0.885, age 0.998, hair 0.980)
AT_LEAST = {"role": 0.94, "style": 0.98, "skin": 0.97, "gender": 0.86, "age": 0.97, "hair": 0.95}


def test_the_scorer_reads_held_out_drawings_it_never_saw():
    net = people_scorer.load()
    acc = people_scorer.accuracy(net, people_sources.held_out(), seed=1234, count=512)
    print("\nheld-out accuracy:", acc)
    for head, bound in AT_LEAST.items():
        assert acc[head]["accuracy"] >= bound, (head, acc[head])


def test_identity_distance_keeps_a_drawing_and_tells_drawings_apart():
    """The same drawing in two layouts is nearer than two drawings of different roles, styles or skin tones."""
    data = people_sources.held_out()
    judge = PM.PeopleJudge.load(data, count=64)
    gen = torch.Generator().manual_seed(5)
    idx = torch.randperm(len(data.drawings), generator=gen)[:32]
    first = people.compose(data.sprites[idx], [people.random_layout(gen) for _ in idx])
    again = people.compose(data.sprites[idx], [people.random_layout(gen) for _ in idx])
    a, b = judge.read(first).identity, judge.read(again).identity
    same = PM.identity_distance(a, b)
    other = PM.identity_distance(a, b.roll(1, 0))
    print(f"\nsame drawing {same.mean():.3f}, another drawing {other.mean():.3f}")  # measured: 0.006, 0.375
    assert same.mean() < 0.5 * other.mean(), (same.mean(), other.mean())
    assert (same < other).float().mean() >= 0.8


def test_a_sure_leak_is_a_change_the_judge_reads_confidently_in_both_images():
    """The edit benchmark's leakage on people (bench/edit_kinds.py): any kept head whose class changes; sure where both
    readings' top probability is above CONFIDENT. Another layout of the same drawing leaks surely less often than
    another drawing does."""
    from bench import edit_kinds as K
    data = people_sources.held_out()
    judge = K.PeopleJudge(PM.PeopleJudge.load(data, count=8))
    pair = K.KINDS[[k.name for k in K.KINDS].index("person → woman")].pairs(1)[0]
    gen = torch.Generator().manual_seed(11)
    idx = torch.randperm(len(data.drawings), generator=gen)[:48]
    first = people.compose(data.sprites[idx], [people.random_layout(gen) for _ in idx])
    again = people.compose(data.sprites[idx], [people.random_layout(gen) for _ in idx])
    read = [[judge.reading(images[i:i + 1], pair) for i in range(len(idx))] for images in (first, again)]
    same = [judge.score(b, a, pair) for a, b in zip(*read)]
    other = [judge.score(b, a, pair) for a, b in zip(read[0], read[1][1:] + read[1][:1])]
    for s in same + other:
        assert s.leak or not s.sure_leak, "a sure leak is a leak"
    rate = lambda scores, key: sum(getattr(s, key) for s in scores) / len(scores)  # noqa: E731
    print(f"\nsame drawing: leak {rate(same, 'leak'):.2f}, sure {rate(same, 'sure_leak'):.2f}; "
          f"another drawing: leak {rate(other, 'leak'):.2f}, sure {rate(other, 'sure_leak'):.2f}")
    assert rate(same, "sure_leak") <= 0.05 and rate(other, "sure_leak") >= 0.9  # measured: 0.00 and 1.00
