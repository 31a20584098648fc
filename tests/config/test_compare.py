from lkca.config.compare import config_difference, same_value


def test_config_values_compare_as_yaml_writes_them():
    assert same_value(1, 1.0) and same_value((8, 8), [8, 8])
    assert same_value({"a": [1, (2, 3)]}, {"a": (1.0, [2, 3])})
    assert not same_value(1, 2) and not same_value([1], [1, 1])
    assert not same_value({"a": 1}, {"a": 1, "b": 2}) and not same_value(None, 0)


def test_the_planner_and_resume_read_a_difference_the_same_way():
    saved = {"lr": 0.001, "img_size": [32, 32], "epochs": 100, "out": "a"}
    assert config_difference(saved, {"lr": 1e-3, "img_size": (32, 32), "epochs": 100.0,
                                     "out": "b"}) == ""
    assert config_difference(saved, dict(saved, lr=0.002)) == "lr: 0.001 there, 0.002 in the config"
