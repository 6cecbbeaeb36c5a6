"""Tests for cryptovol.parallel: the walk-forward's fits on real BTC prices run serially, in spawned
processes and on a real two-node Ray cluster (`ray start --head` plus a second `ray start --address`
on 127.0.0.1) give the same forecasts to the last bit (every task runs with one BLAS thread, the
reference too); order is the input's; a failing task names its item; a dead Ray address fails at
once.

Real prices from the offline mirror ($CRYPTOVOL_DATA_DIR). The Ray cluster is this test's own: its
nodes run under `ray start --block` in their own process groups and are stopped by their process ids
(not `ray stop`, which would stop every Ray node of this user on the machine, another checkout's
sweep included), also when pytest itself is killed (PR_SET_PDEATHSIG).
"""

import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from cryptovol.parallel import (
    BLAS_THREADS,
    Executor,
    ParallelError,
    TaskError,
    parallel_map,
    ray_process_env,
)

SYMBOL, HORIZON, FOLDS = "BTC-USD", 7, 4


def _delayed(x: float) -> float:
    "x, after sleeping x seconds (a module-level task: spawned processes import it from this file)."
    time.sleep(x)
    return x


def _frame(records) -> pd.DataFrame:
    "fold, actual, each forecaster's point forecast and spread, one row per date, from records."
    return pd.concat(
        [
            r.frame().join(pd.DataFrame({f"s_{n}": f.spread for n, f in r.forecasts.items()}))
            for r in records
        ]
    )


@pytest.fixture(scope="module")
def fits(mirror):
    """`one_fold` (walk_forward of every classical forecaster over one origin) on real BTC, its
    tasks and the serial record."""
    from cryptovol.config import load_params
    from cryptovol.data import load_prices
    from cryptovol.features import daily_variance, log_returns
    from cryptovol.forecasters import (
        CoinData,
        Origin,
        forward_realized_vol_from_returns,
        make_forecasters,
        walk_forward,
    )

    prices = load_prices(SYMBOL).iloc[-1200:]
    rets = log_returns(prices["Close"])
    data = CoinData(
        rets,
        forward_realized_vol_from_returns(rets, HORIZON),
        HORIZON,
        daily_variance(prices, "garman_klass").reindex(rets.index),
        SYMBOL,
    )
    first = rets.index[-FOLDS * 180 - HORIZON]
    starts = [first + pd.Timedelta(days=180 * k) for k in range(FOLDS)]
    origins = [
        Origin(
            k,
            s - pd.Timedelta(days=1),
            pd.date_range(s, periods=180 if k < FOLDS - 1 else 180 - HORIZON),
        )
        for k, s in enumerate(starts)
    ]
    from threadpoolctl import threadpool_limits

    forecasters = make_forecasters(load_params())
    one_fold = partial(walk_forward, forecasters, data)
    # one BLAS thread, as every task runs: GARCH's ML fit moves (~1e-5) with the thread count
    with threadpool_limits(BLAS_THREADS):
        serial = _frame([walk_forward(forecasters, data, origins)])
    assert len(serial) == FOLDS * 180 - HORIZON
    assert {"garch", "har_log", "combo"} <= set(serial.columns)
    return one_fold, [[o] for o in origins], serial


def test_processes_equal_serial_on_real_fits(fits):
    one_fold, tasks, serial = fits
    for workers in (1, 2):
        got = _frame(
            parallel_map(
                one_fold, tasks, workers=workers, desc=f"walk-forward, {workers} worker(s)"
            )
        )
        pd.testing.assert_frame_equal(got, serial, check_exact=True)
    pd.testing.assert_frame_equal(
        _frame(Executor.from_params({"parallel": {"workers": 2}}).map(one_fold, tasks)),
        serial,
        check_exact=True,
    )


def test_results_come_back_in_input_order():
    delays = [0.6, 0.0, 0.3, 0.0, 0.1]  # the first finishes last
    assert parallel_map(_delayed, delays, workers=2) == delays
    assert parallel_map(_delayed, delays, workers=1) == delays
    assert parallel_map(str, range(12), workers=3) == [str(i) for i in range(12)]
    assert parallel_map(str, [], workers=2) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_task_names_its_item(workers):
    with pytest.raises(
        TaskError, match=r"^roots: item 2 of 4 \(-9\) failed: ValueError: math domain error$"
    ) as e:
        parallel_map(math.sqrt, [1, 4, -9, 16], workers=workers, desc="roots")
    assert (e.value.index, e.value.item) == (2, -9) and isinstance(e.value.__cause__, ValueError)


def test_what_cannot_reach_a_process_says_so():
    with pytest.raises(ParallelError, match="cannot be sent to a worker process.*workers=1"):
        parallel_map(lambda x: x, [1, 2], workers=2)
    with pytest.raises(Exception, match="workers must be"):
        parallel_map(str, [1], workers=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_ray_address_fails_at_once_naming_it_and_the_fix():
    pytest.importorskip("ray", reason='Ray not installed: pip install -e ".[sweep]"')
    from cryptovol.sweep import SweepError, start_ray

    dead = f"127.0.0.1:{_free_port()}"
    t0 = time.perf_counter()
    with pytest.raises(ParallelError) as e:
        parallel_map(str, [1, 2], address=dead)
    msg = str(e.value)
    assert dead in msg and "ray start --head --port=" in msg and "\n" not in msg
    # the sweep joins Ray the same way
    with pytest.raises(SweepError, match=f"no Ray cluster answers at {dead}"):
        start_ray(dead)
    assert time.perf_counter() - t0 < 10


def _die_with_parent() -> None:
    "In the child: SIGTERM when the test process dies (Linux), so a killed pytest leaves no node."
    import ctypes

    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _start_node(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    "`ray start ARGS --block` in its own process group; returns once the node is up, else raises."
    ray_cli = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen(
        [str(ray_cli), "start", *args, "--disable-usage-stats", "--block"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None and "block forever" not in log.read_text():
        time.sleep(0.25)
    if proc.poll() is not None or "block forever" not in log.read_text():
        _stop_node(proc)
        raise RuntimeError(
            f"ray start {' '.join(args)} did not come up:\n{log.read_text()[-3000:]}"
        )
    return proc


def _stop_node(proc: subprocess.Popen) -> None:
    "SIGTERM to `ray start --block` (it stops its node), then SIGKILL to what is left of its group."
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:  # the group this test started: what the node left behind (raylet, GCS, workers)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def two_nodes():
    "A Ray head and a second node on 127.0.0.1, one CPU each, in a temp dir; stopped by pid after."
    ray = pytest.importorskip("ray", reason='Ray not installed: pip install -e ".[sweep]"')
    if ray.is_initialized():
        ray.shutdown()
    # a short path: Ray's socket paths must stay under 108 characters
    tmp = Path(tempfile.mkdtemp(prefix="cv_ray_", dir="/tmp"))
    # One auth mode for every process of the cluster: once any local ray.init() has written
    # ~/.ray/auth_token (Ray 2.5x does by default), `ray start --head` turns token auth on but
    # `ray start --address` does not, and the second node is refused (InvalidAuthToken).
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")  # this driver; a test cluster on 127.0.0.1 only
    port, env, nodes = _free_port(), ray_process_env(), []
    head = ["--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false"]
    t0 = time.perf_counter()
    try:
        nodes.append(_start_node([*head, f"--temp-dir={tmp}"], tmp / "head.log", env))
        second = [f"--address=127.0.0.1:{port}", "--num-cpus=1"]
        nodes.append(_start_node(second, tmp / "node2.log", env))
        yield {"address": f"127.0.0.1:{port}", "started_s": time.perf_counter() - t0}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for proc in reversed(nodes):
            _stop_node(proc)
        mp.undo()
        shutil.rmtree(tmp, ignore_errors=True)


def test_two_node_ray_cluster_equals_serial(two_nodes, fits):
    "The fits as Ray tasks on two nodes: both nodes run some, the forecasts equal the serial ones."
    import ray

    one_fold, tasks, serial = fits

    # defined here, so Ray's cloudpickle sends it by value (the partial inside it by reference)
    def where_and_fit(task):
        return ray.get_runtime_context().get_node_id(), one_fold(task)

    t0 = time.perf_counter()
    out = parallel_map(
        where_and_fit, tasks, address=two_nodes["address"], desc="walk-forward on Ray"
    )
    took = time.perf_counter() - t0
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(alive) == 2, ray.nodes()
    assert {node for node, _ in out} == alive, "the tasks did not run on both nodes"
    pd.testing.assert_frame_equal(_frame([rec for _, rec in out]), serial, check_exact=True)
    failed = r"item 1 of 2 \(-1\) failed: ValueError: math domain error"  # raised on a Ray worker
    with pytest.raises(TaskError, match=failed):
        parallel_map(math.sqrt, [4, -1], address=two_nodes["address"])
    print(
        f"two-node cluster up in {two_nodes['started_s']:.1f} s; "
        f"{len(tasks)} fits on it in {took:.1f} s"
    )


def test_walk_forward_on_the_two_node_cluster_equals_serial(two_nodes, fits):
    """`walk_forward` given a Ray executor: the origins run as cluster tasks, same record to the
    digit."""
    from cryptovol.forecasters import walk_forward

    one_fold, tasks, serial = fits
    forecasters, data = one_fold.args
    origins = [t[0] for t in tasks]
    rec = walk_forward(forecasters, data, origins, Executor(address=two_nodes["address"]))
    pd.testing.assert_frame_equal(_frame([rec]), serial, check_exact=True)
    assert [f["fold"] for f in rec.fits] == [o.k for o in origins]
