import dataclasses

import pytest
import torch

from nasoa.zoo import Zoo, ZooError, read_manifest, write_manifest


def test_lists_and_loads_with_a_new_head(tiny_zoo):
    zoo = Zoo(tiny_zoo)
    assert sorted(zoo.keys()) == ["mnv3s.digits-32px", "tiny.digits-32px"]
    for key in zoo.keys():
        model = zoo.load(key, num_classes=3)
        assert model.num_classes == 3
        out = model(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 3)


def test_loaded_weights_equal_saved_weights(tiny_zoo):
    zoo = Zoo(tiny_zoo)
    model = zoo.load("tiny.digits-32px")
    saved = torch.load(tiny_zoo / zoo.get("tiny.digits-32px").weights, weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k])


@pytest.mark.parametrize("k", [0, 1, 2, 4])
def test_freezing_k_stages_after_loading(tiny_zoo, k):
    model = Zoo(tiny_zoo).load("tiny.digits-32px", num_classes=5, frozen_stages=k)
    frozen = [model.stem, *model.stages[:k]] if k else []
    for module in [model.stem, *model.stages, model.head]:
        expect = {False} if any(module is f for f in frozen) else {True}
        assert {p.requires_grad for p in module.parameters()} == expect


def test_fine_tune_step_after_loading(tiny_zoo):
    model = Zoo(tiny_zoo).load("mnv3s.digits-32px", num_classes=4, frozen_stages=2)
    opt = torch.optim.SGD(model.trainable_parameters(), lr=0.01)
    before = [p.clone() for p in model.trainable_parameters()]
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.trainable_parameters()))


def test_tampered_weights_are_refused(tiny_zoo):
    zoo = Zoo(tiny_zoo)
    path = tiny_zoo / zoo.get("tiny.digits-32px").weights
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ZooError, match="does not match the manifest"):
        zoo.load("tiny.digits-32px")
    path.unlink()
    with pytest.raises(ZooError, match="missing"):
        zoo.load("tiny.digits-32px")


def test_unknown_key_and_escaping_paths_are_refused(tiny_zoo):
    zoo = Zoo(tiny_zoo)
    with pytest.raises(ZooError, match="unknown zoo key 'nope.x'"):
        zoo.load("nope.x")
    entries = read_manifest(tiny_zoo)
    entries[0] = dataclasses.replace(entries[0], weights="../../outside.pt")
    write_manifest(entries, tiny_zoo)
    with pytest.raises(ZooError, match="escapes the zoo folder"):
        Zoo(tiny_zoo).load(entries[0].key)


def test_weights_are_not_loaded_through_arbitrary_pickle(tiny_zoo):
    zoo = Zoo(tiny_zoo)
    entry = zoo.get("tiny.digits-32px")
    path = tiny_zoo / entry.weights

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, path)
    from nasoa.zoo import sha256_file

    entries = [
        dataclasses.replace(e, sha256=sha256_file(path)) if e.key == entry.key else e for e in read_manifest(tiny_zoo)
    ]
    write_manifest(entries, tiny_zoo)
    with pytest.raises(Exception, match="(?i)weights only|unpickl|unsupported"):
        Zoo(tiny_zoo).load(entry.key)
