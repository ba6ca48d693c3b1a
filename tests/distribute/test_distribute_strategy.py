"""Strategy selection, its summary, the XLA policy, and the runtime flags' validation."""

import json

import pytest
import tensorflow as tf
from absl import flags

from cl_properties.distribute import (
    StrategyConfig,
    check_global_batch,
    choose_strategy,
    describe,
    format_description,
    is_chief,
    jit_policy,
    make_strategy,
    read_tf_config,
    resolve_jit_compile,
    strategy_kind,
)
from cl_properties.experiments.runtime import Runtime, define_runtime_flags, runtime_from_flags
from cl_properties.training import PretrainConfig

TWO_WORKERS = {
    "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
    "task": {"type": "worker", "index": 1},
}


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        (dict(name="nccl"), "unknown strategy 'nccl'"),
        (dict(name="tpu"), "--tpu=local"),
        (dict(name="mirrored", tpu="local"), "only used with strategy 'tpu' or 'auto'"),
        (
            dict(name="default", devices=("/cpu:0",)),
            "devices are only used with strategy 'mirrored'",
        ),
    ],
)
def test_bad_strategy_configs_are_one_line_errors(kwargs, expected):
    with pytest.raises(ValueError) as excinfo:
        StrategyConfig(**kwargs)
    assert expected in one_line_error(excinfo)


@pytest.mark.parametrize(
    "config,tf_config,gpus,expected",
    [
        (StrategyConfig(), None, 0, "default"),
        (StrategyConfig(), None, 1, "mirrored"),
        (StrategyConfig(), None, 8, "mirrored"),
        (StrategyConfig(tpu="local"), None, 0, "tpu"),
        (StrategyConfig(tpu="local"), TWO_WORKERS, 8, "tpu"),
        (StrategyConfig(), TWO_WORKERS, 8, "multi_worker"),
        (
            StrategyConfig(),
            {"cluster": {"chief": ["h:1"]}, "task": {"type": "chief"}},
            0,
            "default",
        ),
        (StrategyConfig(name="default"), TWO_WORKERS, 8, "default"),
        (StrategyConfig(name="mirrored"), None, 0, "mirrored"),
    ],
)
def test_choose_strategy(config, tf_config, gpus, expected):
    assert choose_strategy(config, tf_config=tf_config, num_gpus=gpus) == expected


def test_make_strategy_on_this_host(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert make_strategy(StrategyConfig()) is tf.distribute.get_strategy()  # CPU only: default
    mirrored = make_strategy(StrategyConfig(name="mirrored", devices=("/cpu:0", "/cpu:1")))
    assert strategy_kind(mirrored) == "mirrored" and mirrored.num_replicas_in_sync == 2
    with pytest.raises(ValueError) as excinfo:
        make_strategy(StrategyConfig(name="mirrored", devices=("/gpu:0",)))
    assert "do not exist" in one_line_error(excinfo)
    with pytest.raises(ValueError) as excinfo:
        make_strategy(StrategyConfig(name="multi_worker"))
    assert "TF_CONFIG" in one_line_error(excinfo)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"task": {"type": "worker"}}), 'no "cluster"'),
        (
            json.dumps({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 3}}),
            "not one of",
        ),
        (
            json.dumps({"cluster": {"worker": ["h:1"]}, "task": ["worker", 0]}),
            'TF_CONFIG "task" must be an object',
        ),
        (
            json.dumps({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": "0"}}),
            '"index" must be an integer',
        ),
        (
            json.dumps({"cluster": {"worker": "h:1"}, "task": {"type": "worker", "index": 0}}),
            '"worker" must be a list of "host:port"',
        ),
    ],
)
def test_bad_tf_config_is_a_one_line_error(monkeypatch, value, expected):
    monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(ValueError) as excinfo:
        read_tf_config()
    assert expected in one_line_error(excinfo)
    with pytest.raises(ValueError):
        make_strategy(StrategyConfig(name="multi_worker"))


def test_read_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
    assert read_tf_config() == TWO_WORKERS
    monkeypatch.setenv("TF_CONFIG", " ")
    assert read_tf_config() is None


def test_describe(two_cpu_strategy):
    summary = describe(two_cpu_strategy, 8)
    assert summary["strategy"] == "mirrored" and summary["strategy_class"] == "MirroredStrategy"
    assert (
        summary["replicas"],
        summary["workers"],
        summary["global_batch"],
        summary["per_replica_batch"],
    ) == (2, 1, 8, 4)
    assert [d.split("/")[-1] for d in summary["devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert json.loads(json.dumps(summary)) == summary  # goes into results.json as is
    line = format_description({**summary, "jit_compile": False})
    assert "\n" not in line and "2 replica(s)" in line and "global batch 8 = 4 per replica" in line
    default = describe(tf.distribute.get_strategy(), 6)
    assert (default["strategy"], default["replicas"], default["per_replica_batch"]) == (
        "default",
        1,
        6,
    )
    assert is_chief(two_cpu_strategy) and is_chief(tf.distribute.get_strategy())


@pytest.mark.parametrize("batch", [7, 0, 2.0])
def test_batch_must_split_evenly_over_replicas(two_cpu_strategy, batch):
    with pytest.raises(ValueError) as excinfo:
        check_global_batch(two_cpu_strategy, batch)
    one_line_error(excinfo)
    with pytest.raises(ValueError):
        describe(two_cpu_strategy, batch)


@pytest.mark.parametrize(
    "kind,devices,requested,expected",
    [
        ("default", {"CPU"}, None, False),
        ("default", {"CPU"}, True, True),
        ("default", {"GPU"}, None, True),
        ("default", {"GPU"}, False, False),
        ("mirrored", {"GPU"}, None, True),
        ("multi_worker", {"GPU"}, None, True),
        ("mirrored", {"CPU"}, None, False),
        ("multi_worker", {"CPU"}, False, False),
        ("tpu", {"TPU"}, None, False),
        ("tpu", {"TPU"}, True, True),
    ],
)
def test_jit_policy(kind, devices, requested, expected):
    assert jit_policy(kind, frozenset(devices), requested) is expected


@pytest.mark.parametrize(
    "kind,devices,requested,expected",
    [
        ("mirrored", {"CPU"}, True, "over CPU devices"),
        ("multi_worker", {"CPU", "GPU"}, True, "over CPU devices"),
        ("tpu", {"TPU"}, False, "impossible on a TPU"),
    ],
)
def test_incompatible_jit_is_a_one_line_error(kind, devices, requested, expected):
    with pytest.raises(ValueError) as excinfo:
        jit_policy(kind, frozenset(devices), requested)
    assert expected in one_line_error(excinfo)


def test_jit_policy_respects_op_determinism_and_this_host(two_cpu_strategy):
    assert jit_policy("default", frozenset({"GPU"}), None, deterministic=True) is False
    assert resolve_jit_compile(two_cpu_strategy, None) is False
    assert resolve_jit_compile(tf.distribute.get_strategy(), True) is True
    with pytest.raises(ValueError):
        resolve_jit_compile(two_cpu_strategy, True)


def parse(*argv: str) -> flags.FlagValues:
    flag_values = flags.FlagValues()
    define_runtime_flags(flag_values)
    flag_values(["prog", *argv])
    return flag_values


def test_runtime_flags_defaults_and_translation():
    runtime = runtime_from_flags(parse())
    assert runtime == Runtime()
    runtime = runtime_from_flags(
        parse(
            "--strategy=tpu",
            "--tpu=local",
            "--global_bn",
            "--jit_compile=off",
            "--checkpoint_every=200",
            "--keep_checkpoints=5",
            "--fresh",
            "--deterministic",
        )
    )
    assert runtime.strategy == StrategyConfig(name="tpu", tpu="local")
    assert (
        runtime.checkpoints.every_steps,
        runtime.checkpoints.keep,
        runtime.checkpoints.fresh,
    ) == (200, 5, True)
    assert (runtime.global_bn, runtime.jit_compile, runtime.deterministic) == (True, False, True)
    configured = runtime.configure(PretrainConfig())
    assert configured.encoder.sync_bn is True and configured.jit_compile is False
    assert configured.encoder.name == PretrainConfig().encoder.name
    assert runtime_from_flags(parse("--jit_compile=on")).jit_compile is True


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--strategy=tpu"], "needs a TPU address"),
        (["--strategy=mirrored", "--tpu=my-tpu"], "only used with strategy"),
    ],
)
def test_inconsistent_runtime_flags_are_one_line_errors(argv, expected):
    with pytest.raises(ValueError) as excinfo:
        runtime_from_flags(parse(*argv))
    assert expected in one_line_error(excinfo)


@pytest.mark.parametrize(
    "arg", ["--keep_checkpoints=0", "--checkpoint_every=-5", "--multi_worker_timeout=0"]
)
def test_out_of_range_runtime_flags_fail_at_parsing_naming_the_flag(arg):
    with pytest.raises(flags.IllegalFlagValueError) as excinfo:
        parse(arg)
    assert f"flag {arg}" in one_line_error(excinfo)


def test_unknown_strategy_flag_is_rejected_in_one_line():
    with pytest.raises(flags.IllegalFlagValueError) as excinfo:
        parse("--strategy=horovod")
    message = one_line_error(excinfo)
    assert "horovod" in message and "multi_worker" in message
