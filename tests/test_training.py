"""Methods, the Trainer loop, checkpoints and exact resume."""

import math
import statistics

import pytest
import torch
from torch import nn

from physgrad.nets.adapters import observations
from physgrad.problems import Batch, Problem
from physgrad.solvers import GaussNewton
from physgrad.training import (
    CheckpointError,
    Physical,
    Supervised,
    Trainer,
    TrainingDiverged,
    Unsupervised,
    load_checkpoint,
)


class Cubic(Problem):
    """y = x^3 (badly scaled near 0 and far away); x ~ U[-2, 2]^2."""

    name = "cubic"
    dtype = torch.float64

    def physics(self, batch):
        return lambda x: x**3

    def sample(self, batch_size, generator):
        x = 4 * torch.rand(batch_size, 2, generator=generator, dtype=self.dtype) - 2
        return Batch(y_target=x**3, x_true=x)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 2))


def _adam(params):
    return torch.optim.Adam(params, lr=3e-3)


def _trainer(method, run_dir=None, **kw):
    return Trainer(Cubic(), _net(), method, _adam, batch_size=32, seed=7, run_dir=run_dir,
                   progress=False, **kw)


@pytest.mark.parametrize(
    "method", [Unsupervised(), Unsupervised(clip=1.0), Supervised(), Physical(GaussNewton())]
)
def test_every_method_trains_and_logs_x_and_y_errors(method):
    """Median over 3 seeds of last/first x_l1 (10-iteration means of 50): one seed's ratio is
    0.26-0.41 for every method here, so a median above 0.7 means a method stopped training."""
    ratios = []
    for seed in range(3):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 2))
        history = Trainer(Cubic(), net, method, _adam, batch_size=32, seed=seed,
                          progress=False).train(50)
        assert len(history) == 50
        for key in ("loss", "x_l1", "y_l1", "y_l2", "step_time"):
            assert all(math.isfinite(v) for v in history[key])
        ratios.append(sum(history["x_l1"][-10:]) / sum(history["x_l1"][:10]))
    assert statistics.median(ratios) < 0.7, ratios


def test_same_seed_gives_the_same_data_stream_for_every_method():
    a = _trainer(Unsupervised())
    b = _trainer(Supervised())
    for _ in range(3):
        ba, bb = a.problem.sample(4, a.generator), b.problem.sample(4, b.generator)
        assert torch.equal(ba.y_target, bb.y_target)


def test_resume_after_interruption_is_bit_identical(tmp_path):
    full = _trainer(Physical(GaussNewton()), run_dir=tmp_path / "full").train(40)

    part = _trainer(Physical(GaussNewton()), run_dir=tmp_path / "part", checkpoint_every=10)
    with pytest.raises(KeyboardInterrupt):
        original = part.step
        def interrupt_at_25():
            if part.iteration == 25:
                raise KeyboardInterrupt
            return original()
        part.step = interrupt_at_25
        part.train(40)
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["iteration"] == 20

    resumed = _trainer(Physical(GaussNewton()), run_dir=tmp_path / "part", checkpoint_every=10)
    history = resumed.train(40, resume=True)
    for key in ("loss", "x_l1", "y_l2"):
        assert history[key] == full[key]
    final_a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["model"]
    final_b = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)["model"]
    for k in final_a:
        assert torch.equal(final_a[k], final_b[k])


def test_nan_loss_stops_with_the_iteration_named(tmp_path):
    class Exploding(Cubic):
        def physics(self, batch):
            return lambda x: x**3 / 0.0

    trainer = Trainer(Exploding(), _net(), Unsupervised(), _adam, batch_size=4,
                      progress=False)
    with pytest.raises(TrainingDiverged, match="at iteration 0"):
        trainer.train(5)


def test_checkpoint_errors_name_the_problem(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(bad)
    torch.save({"something": 1}, bad)
    with pytest.raises(CheckpointError, match="not a physgrad checkpoint"):
        load_checkpoint(bad)
    torch.save({"format": "physgrad-checkpoint", "version": 99}, bad)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_resuming_another_methods_checkpoint_is_refused(tmp_path):
    _trainer(Unsupervised(), run_dir=tmp_path).train(3)
    with pytest.raises(CheckpointError, match="method='unsupervised', not 'supervised'"):
        _trainer(Supervised(), run_dir=tmp_path).train(5, resume=True)


def test_trainer_validates_its_arguments():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        Trainer(Cubic(), _net(), Unsupervised(), _adam, batch_size=0)
    with pytest.raises(TypeError, match="network must be a torch.nn.Module"):
        Trainer(Cubic(), lambda x: x, Unsupervised(), _adam, batch_size=2)
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        _trainer(Unsupervised()).train(0)
    with pytest.raises(ValueError, match="unknown solver 'magic'"):
        _trainer(Physical("magic")).train(1)


def test_sigterm_stops_after_the_iteration_with_a_checkpoint_and_resumes_exactly(tmp_path):
    import os
    import signal

    full = _trainer(Physical(GaussNewton()), run_dir=tmp_path / "full").train(30)
    part = _trainer(Physical(GaussNewton()), run_dir=tmp_path / "part", checkpoint_every=100)
    original = part.step

    def signal_at_17():
        if part.iteration == 17:
            os.kill(os.getpid(), signal.SIGTERM)
        return original()

    part.step = signal_at_17
    with pytest.raises(KeyboardInterrupt, match="SIGTERM at iteration 18"):
        part.train(30)
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["iteration"] == 18
    resumed = _trainer(Physical(GaussNewton()), run_dir=tmp_path / "part").train(30, resume=True)
    assert resumed["x_l1"] == full["x_l1"]


def test_nan_physical_gradient_is_reported_as_such(tmp_path):
    from physgrad.solvers import Analytic

    nan_solver = Analytic(lambda x0, y: torch.full_like(x0, float("nan")), name="broken")
    trainer = _trainer(Physical(nan_solver), run_dir=tmp_path, checkpoint_every=2)
    with pytest.raises(TrainingDiverged, match=r"physical gradient is NaN/inf for 32 of 32 .*"
                       r"at iteration 0"):
        trainer.train(3)


# ---------------------------------------------------------------- held-out evaluation


def _heldout():
    from physgrad.training import heldout_batch

    return heldout_batch(Cubic(), 50)


def test_heldout_evaluation_is_scheduled_written_and_does_not_touch_training(tmp_path):
    plain = _trainer(Physical(GaussNewton()), run_dir=tmp_path / "plain").train(30)
    scored = _trainer(Physical(GaussNewton()), run_dir=tmp_path / "scored",
                      heldout=_heldout(), eval_every=10)
    history = scored.train(30)
    # evaluating uses neither the data generator nor the optimizer: training is unchanged
    for key in ("loss", "x_l1"):
        assert history[key] == plain[key]
    assert scored.evaluations["iteration"] == [0.0, 10.0, 20.0, 30.0]
    from physgrad.training import History

    on_disk = History.read_csv(tmp_path / "scored" / "heldout.csv")
    assert on_disk.columns == scored.evaluations.columns
    import json

    summary = json.loads((tmp_path / "scored" / "summary.json").read_text())
    assert summary["heldout"]["iteration"] == 30
    assert summary["heldout"]["x_l1"] == scored.evaluations["x_l1"][-1]
    assert summary["threads"] == torch.get_num_threads()


def test_heldout_scores_equal_a_direct_evaluation_of_the_network():
    from physgrad.training import evaluate

    trainer = _trainer(Unsupervised(), heldout=_heldout())
    trainer.train(5)
    batch = _heldout()
    trainer.network.eval()
    with torch.no_grad():
        x = trainer.predict(batch)
    expected = (x - batch.x_true).abs().sum(-1).mean().item()
    assert trainer.evaluations["x_l1"][-1] == pytest.approx(expected, rel=1e-6)  # float32 net
    # the chunk size only changes the summation order
    chunked = evaluate(Cubic(), trainer.predict, batch, chunk=7)
    assert chunked["x_l1"] == pytest.approx(expected, rel=1e-6)


def test_heldout_evaluations_resume_exactly(tmp_path):
    full = _trainer(Unsupervised(), run_dir=tmp_path / "full", heldout=_heldout(), eval_every=4)
    full.train(20)
    part = _trainer(Unsupervised(), run_dir=tmp_path / "part", heldout=_heldout(), eval_every=4,
                    checkpoint_every=6)
    original = part.step

    def interrupt_at_15():
        if part.iteration == 15:
            raise KeyboardInterrupt
        return original()

    part.step = interrupt_at_15
    with pytest.raises(KeyboardInterrupt):
        part.train(20)
    again = _trainer(Unsupervised(), run_dir=tmp_path / "part", heldout=_heldout(),
                     eval_every=4)
    again.train(20, resume=True)
    assert again.evaluations.columns == full.evaluations.columns


def test_fused_finiteness_check_still_names_the_tensor():
    trainer = _trainer(Unsupervised())
    bad = {"a": torch.ones(3), "b": torch.tensor([1.0, math.inf]), "c": torch.zeros(2)}
    with pytest.raises(TrainingDiverged, match="gradient of b became NaN/inf at iteration 0"):
        trainer._check_finite(bad, "gradient of {}")
    huge = {"a": torch.full((4,), 1e30)}  # the norm overflows in float32, the values do not
    trainer._check_finite(huge, "weight {}")


@pytest.mark.slow
def test_compiled_training_matches_eager():
    # torch.compile needs a C++ compiler and tens of seconds even for this MLP: slow suite
    eager = _trainer(Physical(GaussNewton()))
    compiled = _trainer(Physical(GaussNewton()), compile=True)
    a, b = eager.train(3), compiled.train(3)
    for key in ("loss", "x_l1"):
        assert b[key] == pytest.approx(a[key], rel=1e-4)
    for p, q in zip(eager.network.parameters(), compiled.network.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- precise batch norm


def _bn_net():
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 2))


def test_precise_batchnorm_leaves_the_network_untouched_and_is_deterministic():
    from physgrad.training.evaluation import CALIBRATION_SEED, heldout_batch, with_precise_batchnorm

    net = _bn_net().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    calibration = heldout_batch(Cubic(), 100, CALIBRATION_SEED)
    a = with_precise_batchnorm(net, observations, calibration, chunk=25)
    b = with_precise_batchnorm(net, observations, calibration, chunk=25)
    assert net.training and a is not net and not a.training
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_precise_batchnorm_statistics_are_the_exact_average_of_the_chunk_statistics():
    from physgrad.training.evaluation import CALIBRATION_SEED, heldout_batch, with_precise_batchnorm

    net = _bn_net()
    calibration = heldout_batch(Cubic(), 60, CALIBRATION_SEED)
    est = with_precise_batchnorm(net, observations, calibration, chunk=20)
    with torch.no_grad():
        hidden = net[0](observations(calibration))  # the layer before the batch norm
    chunks = hidden.split(20)
    mean = torch.stack([c.mean(0) for c in chunks]).mean(0)
    var = torch.stack([c.var(0, unbiased=True) for c in chunks]).mean(0)
    torch.testing.assert_close(est[1].running_mean, mean)
    torch.testing.assert_close(est[1].running_var, var)


def test_precise_batchnorm_is_the_identity_without_batchnorm():
    from physgrad.training.evaluation import heldout_batch, with_precise_batchnorm

    net = _net()
    assert with_precise_batchnorm(net, observations, heldout_batch(Cubic(), 8)) is net


def test_heldout_scores_of_a_batchnorm_network_use_re_estimated_statistics(tmp_path):
    """Scoring does not change training, and equals eval mode after re-estimation (not the
    stale running averages)."""
    from physgrad.training.evaluation import CALIBRATION_SEED, heldout_batch, with_precise_batchnorm

    def trainer(**kw):
        return Trainer(Cubic(), _bn_net(), Unsupervised(), _adam, batch_size=32, seed=7,
                       progress=False, **kw)

    plain = trainer().train(12)
    scored = trainer(heldout=_heldout(), eval_every=4)
    assert scored.train(12)["x_l1"] == plain["x_l1"]
    calibration = heldout_batch(Cubic(), 50, CALIBRATION_SEED)
    precise = with_precise_batchnorm(scored.network, observations, calibration)
    batch = _heldout()
    with torch.no_grad():
        inputs = observations(batch)
        expected = (precise(inputs) - batch.x_true).abs().sum(-1).mean().item()
        scored.network.eval()
        stale = (scored.network(inputs) - batch.x_true).abs().sum(-1).mean().item()
    assert scored.evaluations["x_l1"][-1] == pytest.approx(expected, rel=1e-6)
    assert stale != pytest.approx(expected, rel=1e-6)
