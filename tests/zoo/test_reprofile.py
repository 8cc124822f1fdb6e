from nasoa.train.device import device_name
from nasoa.zoo import Zoo
from nasoa.zoo.reprofile import main


def test_a_second_device_is_added_beside_the_first(tiny_zoo):
    before = {e.key: len(e.profiles) for e in Zoo(tiny_zoo).entries()}
    assert main([str(tiny_zoo), "--batch-sizes", "4", "--warmup", "1", "--steps", "1"]) == 0
    for entry in Zoo(tiny_zoo).entries():
        assert entry.devices() == sorted(["cpu:test", device_name("cpu")])
        new = [p for p in entry.profiles if p.device == device_name("cpu")]
        assert {p.frozen_stages for p in new} == set(range(entry.num_stages + 1))
        assert len(entry.profiles) == before[entry.key] + len(new)
        assert entry.step_ms(device_name("cpu"), 4) > 0
