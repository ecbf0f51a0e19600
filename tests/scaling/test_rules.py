"""The scaling rules, checked with the seed chapter's own numbers: 2 x 8 GPUs with a
per-device batch of 22 and a learning rate of 5e-5, moved to 4 x 8 GPUs."""

from __future__ import annotations

import math

import pytest

from app.engine.errors import ConfigError
from app.scaling.roles import RoleAssignment, assign_roles
from app.scaling.rules import World, scale_config
from app.scaling.space import scaled_space

TWO_NODES = World(2, 8)
FOUR_NODES = World(4, 8)
ROLES = assign_roles(
    {
        "lr": "learning_rate",
        "per_device_batch": "per_device_batch_size",
        "global_batch": "global_batch_size",
        "warmup": "warmup_steps",
    },
    ["lr", "per_device_batch", "global_batch", "warmup"],
)
CHAPTER = {"lr": 5e-5, "per_device_batch": 22, "global_batch": 352, "warmup": 1000, "heads": 24}


def test_world_sizes_of_the_chapter():
    assert TWO_NODES.size == 16 and FOUR_NODES.size == 32


def test_linear_rule_doubles_global_batch_and_learning_rate():
    result = scale_config(CHAPTER, ROLES, TWO_NODES, FOUR_NODES, "linear")
    assert result.world_factor == 2 and result.batch_factor == 2
    assert result.params["lr"] == pytest.approx(1e-4)  # 5e-5 * 2 = 0.0001
    assert result.params["per_device_batch"] == 22  # per device: unchanged
    assert result.params["global_batch"] == 704  # 22 * 32
    assert result.params["warmup"] == 500  # same samples, twice the batch: half the steps
    assert result.params["heads"] == 24  # no role: untouched
    formulas = " | ".join(s.formula for s in result.steps)
    assert "2 x 8 = 16 -> 4 x 8 = 32" in formulas
    assert "5e-05 x 2 = 0.0001" in formulas
    assert "22 x 16 = 352 -> 22 x 32 = 704" in formulas
    assert {c.param for c in result.changes} == {"lr", "global_batch", "warmup"}


def test_sqrt_rule_for_adam_type_optimizers():
    result = scale_config(CHAPTER, ROLES, TWO_NODES, FOUR_NODES, "sqrt")
    assert result.lr_factor == pytest.approx(math.sqrt(2))
    assert result.params["lr"] == pytest.approx(5e-5 * math.sqrt(2))  # 7.07e-5
    assert result.params["global_batch"] == 704
    assert result.params["warmup"] == 500


def test_none_rule_changes_only_the_global_batch():
    result = scale_config(CHAPTER, ROLES, TWO_NODES, FOUR_NODES, "none")
    assert result.params["lr"] == 5e-5
    assert result.params["warmup"] == 1000
    assert result.params["global_batch"] == 704  # the world still grew
    assert result.lr_factor == 1 and result.warmup_factor == 1


def test_warmup_kept_in_steps_when_asked():
    result = scale_config(CHAPTER, ROLES, TWO_NODES, FOUR_NODES, "linear", warmup="same_steps")
    assert result.params["warmup"] == 1000


def test_per_device_batch_override_enters_the_factor():
    # 22 -> 11 per device on twice the GPUs: the global batch stays at 352.
    result = scale_config(CHAPTER, ROLES, TWO_NODES, FOUR_NODES, "linear", per_device_batch=11)
    assert result.batch_factor == pytest.approx(1.0)
    assert result.params["per_device_batch"] == 11
    assert result.params["global_batch"] == 352
    assert result.params["lr"] == pytest.approx(5e-5)


def test_gpt2_model_sizes_keep_their_per_device_batch():
    # The chapter's GPT-2 table: 1.5b with a per-device batch of 2, 30b with 5.
    for batch, lr in ((2, 1.5e-4), (5, 6e-5)):
        config = {"lr": lr, "per_device_batch": batch, "global_batch": batch * 16, "warmup": 100}
        result = scale_config(config, ROLES, TWO_NODES, FOUR_NODES, "linear")
        assert result.params["per_device_batch"] == batch
        assert result.params["global_batch"] == batch * 32
        assert result.params["lr"] == pytest.approx(lr * 2)


def test_scaling_down_halves():
    result = scale_config(CHAPTER, ROLES, FOUR_NODES, TWO_NODES, "linear")
    assert result.params["lr"] == pytest.approx(2.5e-5)
    assert result.params["global_batch"] == 176
    assert result.params["warmup"] == 2000


def test_roles_from_names_only_when_none_is_declared():
    roles = assign_roles({}, ["learning_rate", "batch_size", "warmup_steps", "dropout"])
    assert roles.inferred
    assert roles.roles == {
        "learning_rate": "learning_rate",
        "batch_size": "per_device_batch_size",
        "warmup_steps": "warmup_steps",
    }
    assert any("batch_size" in note and "from its name" in note for note in roles.notes)
    result = scale_config(
        {"learning_rate": 5e-5, "batch_size": 22, "warmup_steps": 10, "dropout": 0.1},
        roles,
        TWO_NODES,
        FOUR_NODES,
        "linear",
    )
    assert result.params["learning_rate"] == pytest.approx(1e-4)
    assert result.params["batch_size"] == 22
    assert result.notes  # the guess is said out loud

    declared = assign_roles({"step_size": "learning_rate"}, ["step_size", "lr", "batch_size"])
    assert not declared.inferred and declared.roles == {"step_size": "learning_rate"}


def test_without_batch_roles_the_per_device_batch_is_taken_as_unchanged():
    roles = RoleAssignment({"lr": "learning_rate"}, inferred=False)
    result = scale_config({"lr": 5e-5}, roles, TWO_NODES, FOUR_NODES, "linear")
    assert result.params["lr"] == pytest.approx(1e-4)
    assert any("per-device batch is taken as unchanged" in n for n in result.notes)


def test_errors_name_the_field():
    with pytest.raises(ConfigError) as err:
        assign_roles({"lr": "learning-rate"}, ["lr"])
    assert err.value.field == "space.lr.role"
    with pytest.raises(ConfigError) as err:
        scale_config(
            {"lr": 1e-3},
            RoleAssignment({"lr": "learning_rate"}, False),
            TWO_NODES,
            FOUR_NODES,
            "linear",
            per_device_batch=8,
        )
    assert err.value.field == "per_device_batch"
    with pytest.raises(ConfigError):
        World(0, 8)


def test_scaled_space_moves_bounds_and_holds_the_configs():
    space = {
        "lr": {"type": "float", "low": 1e-5, "high": 1e-4, "scale": "log", "role": "learning_rate"},
        "per_device_batch": {"type": "int", "low": 8, "high": 32, "role": "per_device_batch_size"},
        "warmup": {"type": "int", "low": 0, "high": 2000, "step": 100, "role": "warmup_steps"},
        "data_fraction": {"type": "fixed", "value": 0.01},
    }
    roles = assign_roles({k: v["role"] for k, v in space.items() if "role" in v}, list(space))
    scaled = scale_config(
        {"lr": 1e-4, "per_device_batch": 22, "warmup": 1000, "data_fraction": 0.01},
        roles,
        TWO_NODES,
        FOUR_NODES,
        "linear",
    )
    params = {**scaled.params, "data_fraction": 1.0}
    new = scaled_space(space, roles, "linear", 2.0, [params], fixed={"data_fraction": 1.0})
    assert new["lr"]["low"] == pytest.approx(2e-5) and new["lr"]["high"] == pytest.approx(2e-4)
    assert new["per_device_batch"] == space["per_device_batch"]
    assert new["warmup"]["high"] == 1000 and "step" not in new["warmup"]
    assert new["data_fraction"] == {"type": "fixed", "value": 1.0}
    from app.engine.space import SearchSpace

    SearchSpace.from_dict(new).validate(params)


def test_bad_numbers_are_config_errors_not_crashes():
    for config in (
        {**CHAPTER, "per_device_batch": 0},
        {**CHAPTER, "global_batch": 10**400},
        {**CHAPTER, "lr": 1e308},
        {**CHAPTER, "lr": "fast"},
    ):
        with pytest.raises(ConfigError):
            scale_config(config, ROLES, TWO_NODES, World(1000, 1000), "linear")


# One role at a time: each step of scale_config on a config that has only that role.


def _alone(role: str, name: str) -> RoleAssignment:
    return assign_roles({name: role}, [name])


def test_per_device_batch_alone_is_kept_or_set_and_sets_the_factor():
    roles = _alone("per_device_batch_size", "bs")
    kept = scale_config({"bs": 16}, roles, World(1, 8), World(2, 8), "linear")
    assert kept.params == {"bs": 16} and kept.batch_factor == 2 and kept.changes == []
    assert [s.what for s in kept.steps] == [
        "world size",
        "per-device batch",
        "global batch factor",
        "global batch",
    ]
    assert kept.steps[-1].value == 16 * 16
    set_ = scale_config({"bs": 16}, roles, World(1, 8), World(2, 8), "linear", 8)
    assert set_.params == {"bs": 8} and set_.batch_factor == 1
    assert [(c.param, c.before, c.after) for c in set_.changes] == [("bs", 16, 8)]


def test_global_batch_alone_grows_by_r_and_says_when_it_rounds():
    roles = _alone("global_batch_size", "gbs")
    result = scale_config({"gbs": 3}, roles, World(1, 2), World(1, 3), "linear")
    assert result.batch_factor == 1.5
    assert result.params == {"gbs": 4}  # 4.5 rounds to even
    assert "gbs rounded to 4" in result.notes
    assert not any("no batch parameter" in n for n in result.notes)
    as_float = scale_config({"gbs": 3.0}, roles, World(1, 2), World(1, 3), "linear")
    assert as_float.params == {"gbs": 4.5}


def test_learning_rate_alone_follows_the_rule():
    roles = _alone("learning_rate", "lr")
    expected = {"linear": 0.4, "sqrt": 0.2, "none": 0.1}
    for rule, lr in expected.items():
        result = scale_config({"lr": 0.1}, roles, World(1, 1), World(1, 4), rule)  # type: ignore[arg-type]
        assert result.params["lr"] == pytest.approx(lr)
        assert result.steps[-1].what == "learning rate" and result.steps[-1].param == "lr"
    # Without a batch role the per-device batch is taken as unchanged: r is the world factor.
    assert any("no batch parameter" in n for n in result.notes)


def test_warmup_alone_is_kept_in_samples_or_in_steps():
    roles = _alone("warmup_steps", "warmup")
    samples = scale_config({"warmup": 90}, roles, World(1, 1), World(1, 4), "sqrt")
    assert samples.params == {"warmup": 22} and samples.warmup_factor == 0.25  # 22.5 -> 22
    steps = scale_config(
        {"warmup": 90}, roles, World(1, 1), World(1, 4), "sqrt", None, "same_steps"
    )
    assert steps.params == {"warmup": 90} and steps.changes == []
    none = scale_config({"warmup": 90.0}, roles, World(1, 1), World(1, 4), "none")
    assert none.params == {"warmup": 90.0} and none.warmup_factor == 1.0
    assert "no parameter has the role learning_rate" in " ".join(samples.notes)
