"""Run configurations fail before any computation, with a message that names the fix."""

from pathlib import Path

import pytest

from nqs.runs.config import ConfigError, load, loads

GOOD = """
[problem]
name = "heisenberg_chain"
L = 8

[method]
kind = "vmc"
model = "rbm"
alpha = 1
n_iter = 10

[output]
archive = "runs/x.h5"
"""


def test_a_good_config_is_typed_and_complete():
    c = loads(GOOD)
    assert c.problem.name == "heisenberg_chain" and c.problem.n_sites == 8
    assert c.kind == "vmc" and c.options.n_iter == 10 and c.options.model_options.alpha == 1
    assert str(c.archive_path) == "runs/x.h5"
    assert c.checkpoint_every == 50


def test_archive_defaults_to_the_config_name(tmp_path):
    path = tmp_path / "my_run.toml"
    path.write_text(GOOD.replace('archive = "runs/x.h5"', ""))
    assert load(path).archive_path.as_posix() == "runs/my_run.h5"


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda s: s.replace("n_iter = 10", "n_iters = 10"), ["unknown key 'n_iters'", "Did you mean 'n_iter'"]),
        (lambda s: s.replace("alpha = 1", "alfa = 1"), ["unknown key 'alfa'", "Did you mean 'alpha'"]),
        (lambda s: s + "\n[outptu]\nx = 1\n", ["unknown table or key 'outptu'", "Did you mean 'output'"]),
        (lambda s: s.replace('model = "rbm"', 'model = "rmb"'), ["unknown model 'rmb'", "rbm"]),
        (lambda s: s.replace('kind = "vmc"', 'kind = "vcm"'), ["unknown kind 'vcm'", "Did you mean 'vmc'", "dmrg"]),
        (lambda s: s.replace("L = 8", "L = 2"), ["lattice too small", "'L'=2"]),
        (lambda s: s.replace('name = "heisenberg_chain"', 'name = "heisenberg"'), ["unknown model 'heisenberg'", "heisenberg_chain"]),
        (lambda s: s.replace("n_iter = 10", "n_iter = 0"), ["n_iter must be >= 1"]),
        (lambda s: s.replace("n_iter = 10", 'n_iter = "ten"'), ["'n_iter' must be int"]),
        (lambda s: s.replace("n_iter = 10", "n_iter = 10\nn_samples = 1000\nn_chains = 64"), ["multiple of n_chains"]),
        (lambda s: s.replace('model = "rbm"', 'model = "rbm_symm"').replace("L = 8", "L = 8\npbc = false"), ["does not fit", "periodic"]),
        (
            lambda s: s.replace('model = "rbm"\nalpha = 1', 'model = "transformer"\nsymmetrize = "none"\nsymmetric_phase = true'),
            ["symmetric_phase sums over the images of symmetrize", "symmetrize = 'point_group'"],
        ),
        (lambda s: s.replace('[problem]\nname = "heisenberg_chain"\nL = 8\n', ""), ["missing the [problem] table"]),
        (lambda s: s.replace("L = 8", "L = [8"), ["is not valid TOML"]),
        (lambda s: s.replace('archive = "runs/x.h5"', "checkpoint_every = 0"), ["checkpoint_every must be >= 1"]),
    ],
)
def test_bad_configs_are_rejected(edit, fragments):
    with pytest.raises(ConfigError) as err:
        loads(edit(GOOD))
    for fragment in fragments:
        assert fragment in str(err.value)


def test_dmrg_options_are_checked():
    text = GOOD.replace('kind = "vmc"\nmodel = "rbm"\nalpha = 1\nn_iter = 10', 'kind = "dmrg"\nbond_dims = [8, 0]')
    with pytest.raises(ConfigError, match="bond_dims must be a non-empty list of positive integers"):
        loads(text)
    text = GOOD.replace('kind = "vmc"\nmodel = "rbm"\nalpha = 1\nn_iter = 10', 'kind = "dmrg"\npenalty = "big"')
    with pytest.raises(ConfigError, match="penalty"):
        loads(text)


def test_a_file_that_is_not_toml(tmp_path):
    path = tmp_path / "run.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(path)
    with pytest.raises(ConfigError, match="no configuration file"):
        load(tmp_path / "missing.toml")


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    """Every example configuration of ``configs/`` passes the checks that precede a run."""
    c = load(path)
    assert c.problem.n_sites > 0


@pytest.mark.parametrize("method", ["kind = 'vmc'\nmodel = 'transformer'", "kind = 'vmc'\nmodel = 'ar_rnn'", "kind = 'antn'"])
def test_autoregressive_schedules_follow_the_lattice_size(method):
    """The 4x4-tuned step diverged at 36 sites: from 32 sites on the autoregressive site models
    take the large-lattice schedules; keys written in [method] still win."""
    from nqs.models.autoregressive import AR_VMC_DEFAULTS, AR_VMC_LARGE_LATTICE

    def options(L: int, extra: str = ""):
        return loads(f"[problem]\nname = 'j1j2'\nLx = {L}\nLy = {L}\nJ2 = 0.5\n[method]\n{method}\n{extra}").options

    schedule = ("learning_rate", "learning_rate_final", "diag_shift", "diag_shift_final")
    small, large = options(4), options(6)
    assert [getattr(small, k) for k in schedule] == [AR_VMC_DEFAULTS[k] for k in schedule]
    assert [getattr(large, k) for k in schedule] == [
        AR_VMC_LARGE_LATTICE.get(k, AR_VMC_DEFAULTS[k]) for k in schedule
    ]
    assert large.learning_rate < small.learning_rate and large.diag_shift_final > small.diag_shift_final
    written = options(6, "learning_rate = 0.05\ndiag_shift_final = 1e-4")
    assert (written.learning_rate, written.diag_shift_final) == (0.05, 1e-4)
    assert written.learning_rate_final == AR_VMC_LARGE_LATTICE["learning_rate_final"]


def test_gauge_transformer_keeps_its_schedule_on_large_lattices():
    from nqs.models.transformer import GaugeTransformerOptions

    o = loads("[problem]\nname = 'z2_gauge'\nLx = 4\nLy = 4\nh = 0.3\n[method]\nkind = 'vmc'\nmodel = 'gauge_transformer'\n").options
    for key, value in GaugeTransformerOptions.vmc_defaults.items():
        assert getattr(o, key) == value
