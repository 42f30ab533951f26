"""Ctrl-C at a terminal reaches every process of the group: the forked data-loader workers too.
Only the run's own process may answer it, so the stopping line is printed once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

from ptzjepa.run.app import _install_stop_handlers


def test_ctrl_c_prints_the_stopping_line_once_with_three_workers(capfd):
    stop = threading.Event()
    restore = _install_stop_handlers(stop)
    ctx = multiprocessing.get_context("fork")  # as torch's DataLoader starts its workers on Linux
    workers = [ctx.Process(target=time.sleep, args=(30,)) for _ in range(3)]
    try:
        for worker in workers:
            worker.start()
        time.sleep(0.5)
        for pid in [worker.pid for worker in workers] + [os.getpid()]:  # what the terminal does
            os.kill(pid, signal.SIGINT)
        assert stop.wait(10)
        time.sleep(1.0)  # time for the workers to have answered, had they been going to
        assert all(worker.is_alive() for worker in workers)  # the main process ends them
    finally:
        restore()
        for worker in workers:
            worker.terminate()
            worker.join()
    err = capfd.readouterr().err
    assert err.count("stopping after the current step") == 1, err
