import logging
import subprocess
import sys
import textwrap

from vibraclip_core.data.jobs import Progress


def test_progress_logs_lines_even_without_a_terminal(caplog):
    """tqdm is off when the output is piped; the periodic log lines are not."""
    caplog.set_level(logging.WARNING)
    with Progress(3, "featurize", every_s=0.0) as bar:
        assert bar.bar.disable  # pytest captures the output: no terminal, no bar
        for _ in range(3):
            bar.update(1)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("featurize: 1 of 3 mol (") and lines[-1].startswith(
        "featurize: 3 of 3 mol")
    caplog.clear()
    with Progress(3, "quiet", every_s=0.0, progress=False) as bar:
        bar.update(3)
    assert not caplog.records


def test_ctrl_c_stops_a_featurizing_pool_within_seconds():
    """Issue 28: a library build ran on for 73 s after Ctrl-C. SIGINT arrives with the first
    result; the call must end within 5 s with no worker left."""
    script = textwrap.dedent("""
        import multiprocessing, os, signal, time
        # as in a terminal, even when this test runs as a background job (which ignores SIGINT)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from vibraclip_core.data import jobs
        from vibraclip_core.data import molecules
        state, update = {}, jobs.Progress.update
        def first_result_interrupts(self, n=1):
            if "t" not in state:
                state["t"] = time.monotonic()
                os.kill(os.getpid(), signal.SIGINT)
            update(self, n)
        jobs.Progress.update = first_result_interrupts
        smiles = ["CCCCCCC" + "C" * (i % 7) + "O" for i in range(3000)]
        try:
            molecules.featurize_many(smiles, workers=2, progress=False)
            print("finished")
        except KeyboardInterrupt:
            time.sleep(0.5)
            print("stopped", round(time.monotonic() - state["t"], 1),
                  len(multiprocessing.active_children()))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    words = run.stdout.split()
    assert words and words[0] == "stopped", run.stdout + run.stderr
    assert float(words[1]) < 5.0 and words[2] == "0"


def test_progress_logs_from_a_timer_while_no_update_comes(caplog):
    """Issue 37: a piped library build printed nothing for 160 s: lines came only from
    update(), and an ordered pool.map waits behind one slow molecule."""
    import time

    caplog.set_level(logging.WARNING)
    with Progress(10, "embedding", every_s=0.2):
        time.sleep(1.0)  # no update() at all
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) >= 2 and all(ln.startswith("embedding: 0 of 10 mol (") for ln in lines)
    caplog.clear()
    time.sleep(0.5)
    assert not caplog.records  # closed: the timer stopped
    with Progress(10, "quiet", every_s=0.2, progress=False):
        time.sleep(0.5)
    assert not caplog.records


def test_a_piped_featurize_stuck_on_one_molecule_still_prints_progress():
    """The whole path as a pipe sees it: stderr is not a terminal (no bar), one molecule takes
    1.5 s, and the default interval (shortened to 0.3 s here) still gives lines meanwhile."""
    script = textwrap.dedent("""
        import logging, time
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        from vibraclip_core.data import jobs, molecules
        jobs.PROGRESS_EVERY_S = 0.3
        featurize = molecules._featurize_one
        def slow_first(args):
            if args[0] == "CCO":
                time.sleep(1.5)
            return featurize(args)
        molecules._featurize_one = slow_first
        molecules.featurize_many(["CCO", "CC", "CCC"], workers=1)
        print("done")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert run.stdout.strip() == "done", run.stderr
    waiting = [ln for ln in run.stderr.splitlines() if ln.startswith("featurize: 0 of 3 mol")]
    assert len(waiting) >= 2, run.stderr
